variable "name" {
  description = "Prefix of every name this module creates (roles, key aliases)."
  type        = string
  default     = "trailvault"

  validation {
    condition     = can(regex("^[a-zA-Z0-9+=,.@_-]{1,40}$", var.name))
    error_message = "name must be 1 to 40 characters valid in IAM role names."
  }
}

variable "bucket_name" {
  description = "The archive bucket: created with Object Lock, which can never be turned off."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name (3 to 63 lowercase letters, digits, dots, hyphens)."
  }
}

variable "access_log_bucket_name" {
  description = "A separate bucket for the archive bucket's server access logs (S3 cannot log an Object Lock bucket into itself usefully). Null: \"<bucket_name>-access-logs\"."
  type        = string
  default     = null
}

variable "access_log_retention_days" {
  description = "Days the access logs are kept."
  type        = number
  default     = 365
}

variable "retention" {
  description = "How long every archived version is locked: trailvault's [retention] mode and years or days. The bucket's default retention is set to it."
  type = object({
    mode  = string
    years = optional(number)
    days  = optional(number)
  })
  default = { mode = "COMPLIANCE", years = 7 }

  validation {
    condition     = contains(["COMPLIANCE", "GOVERNANCE"], var.retention.mode)
    error_message = "retention.mode must be COMPLIANCE or GOVERNANCE."
  }
  validation {
    condition     = (var.retention.years == null) != (var.retention.days == null)
    error_message = "retention needs exactly one of years or days."
  }
  validation {
    condition     = coalesce(var.retention.years, 1) >= 1 && coalesce(var.retention.years, 1) <= 100 && coalesce(var.retention.days, 1) >= 1 && coalesce(var.retention.days, 1) <= 36500
    error_message = "retention is 1 to 100 years, or 1 to 36500 days (S3 Object Lock's limit)."
  }
}

variable "lifecycle_policy" {
  description = "The bucket's lifecycle, exactly as trailvault's [retention.lifecycle] (give expiration_days as trailvault's effective configuration prints it). Kept equal to trailvault's policy, `trailvault retention plan` reports nothing for a bucket this module made."
  type = object({
    transitions = optional(list(object({
      days          = number
      storage_class = string
    })), [])
    expiration_days                 = optional(number)
    noncurrent_expiration_days      = optional(number)
    expired_delete_markers          = optional(bool, true)
    abort_incomplete_multipart_days = optional(number, 7)
  })
  default = {}

  validation {
    condition = alltrue([
      for t in var.lifecycle_policy.transitions :
      contains(["STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], t.storage_class)
    ])
    error_message = "lifecycle_policy.transitions[*].storage_class must be one of STANDARD_IA, INTELLIGENT_TIERING, ONEZONE_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE."
  }
  validation {
    condition = alltrue([
      for t in var.lifecycle_policy.transitions :
      !contains(["STANDARD_IA", "ONEZONE_IA"], t.storage_class) || t.days >= 30
    ])
    error_message = "S3 moves objects to STANDARD_IA or ONEZONE_IA no sooner than 30 days after they are written."
  }
}

variable "worker_trusted_principals" {
  description = "Besides ECS tasks, the IAM principals (ARNs) that may assume the worker role: for running the worker elsewhere, or locally for a check. Usually empty."
  type        = list(string)
  default     = []
}

variable "auditor_trusted_principals" {
  description = "The IAM principals (ARNs) that may assume the read-only auditor role (`trailvault verify`)."
  type        = list(string)
  default     = []
}

variable "queue_arns" {
  description = "The regional notification queues the worker consumes (module queue's arn)."
  type        = list(string)
}

variable "dead_letter_queue_arns" {
  description = "Their dead-letter queues, whose depth the worker reports."
  type        = list(string)
  default     = []
}

variable "organization_id" {
  description = "The organization whose accounts the worker may read (o-...): sts:AssumeRole on the reader roles is limited to roles in its accounts (aws:ResourceOrgID). `aws organizations describe-organization --query Organization.Id` prints it."
  type        = string

  validation {
    condition     = can(regex("^o-[a-z0-9]{10,32}$", var.organization_id))
    error_message = "organization_id must be an AWS Organizations id (o- and 10 to 32 lowercase letters or digits, e.g. o-a1b2c3d4e5); `aws organizations describe-organization --query Organization.Id` prints yours."
  }
}

variable "reader_role_name" {
  description = "The name of the reader role in every member account (module member's role_name): the worker may assume it in any account of organization_id."
  type        = string
  default     = "trailvault-reader"
}

variable "organizations_role_arn" {
  description = "For trailvault's organization discovery: the role (in the management account, or a delegated administrator) that may call organizations:ListAccounts; the worker may assume it. Null: no discovery through a role."
  type        = string
  default     = null

  validation {
    condition     = var.organizations_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", var.organizations_role_arn))
    error_message = "organizations_role_arn must be an IAM role ARN (arn:aws:iam::123456789012:role/NAME)."
  }
}

variable "reconcile" {
  description = "trailvault's retention.reconcile: \"enforce\" lets the worker change the bucket's lifecycle and default retention (to keep them equal to its policy); \"report\" (when this module owns them) gives it read access only."
  type        = string
  default     = "report"

  validation {
    condition     = contains(["enforce", "report"], var.reconcile)
    error_message = "reconcile must be \"enforce\" or \"report\"."
  }
}

variable "alerts" {
  description = "trailvault's alerts ([alerts]): with enabled, an SNS topic \"<name>-alerts\" encrypted with a KMS key of its own (unless topic = false), its subscriptions, and the worker's permissions to publish to it, to put events on event_bus_arn when given, and to tag the archived versions whose alerts are out (trailvault-alerts=published; nobody else may change an archived version's tags). Off by default."
  type = object({
    enabled = optional(bool, false)
    topic   = optional(bool, true)
    subscriptions = optional(list(object({
      protocol = string
      endpoint = string
    })), [])
    event_bus_arn = optional(string)
  })
  default  = {}
  nullable = false

  validation {
    condition     = !var.alerts.enabled || var.alerts.topic || var.alerts.event_bus_arn != null
    error_message = "alerts need somewhere to go: keep topic = true (an SNS topic), or give event_bus_arn (an EventBridge bus), or both."
  }
  validation {
    condition     = var.alerts.topic || length(var.alerts.subscriptions) == 0
    error_message = "alerts.subscriptions subscribe to the alerts topic: they need topic = true."
  }
  validation {
    condition = alltrue([
      for s in var.alerts.subscriptions : contains(["sqs", "lambda", "https", "email", "email-json", "sms"], s.protocol)
    ])
    error_message = "alerts.subscriptions[*].protocol must be one of sqs, lambda, https, email, email-json, sms (alerts leave AWS over TLS only: no http)."
  }
  validation {
    condition     = var.alerts.event_bus_arn == null ? true : can(regex("^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]+$", var.alerts.event_bus_arn))
    error_message = "alerts.event_bus_arn must be an EventBridge bus ARN (arn:aws:events:REGION:ACCOUNT:event-bus/NAME)."
  }
}

variable "enforce_tls" {
  description = "Deny every request to the archive bucket that is not over TLS, and every upload not encrypted with the archive key. Turn off only for an emulator that cannot evaluate conditions."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let `terraform destroy` empty the buckets (GOVERNANCE versions only; COMPLIANCE versions can never be deleted before their date). For test stacks only."
  type        = bool
  default     = false
}

variable "emulator" {
  description = "Shape the IAM policies for the local emulator, never for AWS: the emulator matches KMS, SNS and EventBridge permissions only against the resource \"*\" (kms:Sign and, with alerts, sns:Publish and events:PutEvents statements on \"*\" are added), and fails evaluating AssumeRole against a trust policy with a Service principal (the ECS statement is left out: no ECS task runs there)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
