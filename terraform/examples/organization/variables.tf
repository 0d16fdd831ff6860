variable "home_region" {
  description = "The archive's region (the security account's bucket, keys, worker), with its own notification queue."
  type        = string
  default     = "eu-west-1"
}

variable "second_region" {
  description = "The other region the member accounts' CloudTrail buckets live in; it gets a notification queue too."
  type        = string
  default     = "us-east-1"
}

variable "security_account_id" {
  description = "The security (archive) account."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.security_account_id))
    error_message = "security_account_id must be a 12-digit account id."
  }
}

variable "organization_id" {
  description = "The organization (o-...): the worker may assume reader roles only in its accounts."
  type        = string
}

variable "admin_role_name" {
  description = "The role Terraform assumes in every account (created by Organizations in the accounts it creates)."
  type        = string
  default     = "OrganizationAccountAccessRole"
}

variable "member_a" {
  description = "The first member account: its id, a name for logs and metrics, and its CloudTrail bucket in each region."
  type = object({
    account_id         = string
    name               = string
    home_bucket        = string
    second_bucket      = string
    cleanup_after_days = optional(number)
  })
}

variable "member_b" {
  description = "The second member account (same fields as member_a)."
  type = object({
    account_id         = string
    name               = string
    home_bucket        = string
    second_bucket      = string
    cleanup_after_days = optional(number)
  })
}

variable "external_ids" {
  description = "The ExternalId each member's reader role requires (a secret the worker presents; generate one per account, e.g. with random_id)."
  type = object({
    member_a = string
    member_b = string
  })
  sensitive = true
}

variable "archive_bucket" {
  description = "The archive bucket's name (globally unique)."
  type        = string
}

variable "retention" {
  description = "trailvault's [retention]: lock mode and years or days."
  type = object({
    mode  = string
    years = optional(number)
    days  = optional(number)
  })
  default = { mode = "COMPLIANCE", years = 7 }
}

variable "lifecycle_policy" {
  description = "trailvault's [retention.lifecycle], with expiration in days (for 7 years and 30 days of grace: 2587)."
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
  default = {
    transitions = [
      { days = 30, storage_class = "STANDARD_IA" },
      { days = 90, storage_class = "GLACIER_IR" },
      { days = 365, storage_class = "DEEP_ARCHIVE" },
    ]
    expiration_days            = 2587
    noncurrent_expiration_days = 30
  }
}

variable "image" {
  description = "The trailvault container image (infra/Dockerfile), by digest."
  type        = string
  default     = "public.ecr.aws/example/trailvault:latest"
}

variable "vpc_cidr" {
  description = "The worker's VPC, created by this example (private subnets; bring your own network in production through the worker-ecs module's subnet_ids)."
  type        = string
  default     = "10.42.0.0/16"
}

variable "auditor_principals" {
  description = "Principals (ARNs) that may assume the read-only auditor role."
  type        = list(string)
  default     = []
}

variable "worker_principals" {
  description = "Principals (ARNs) that may assume the worker role besides ECS tasks (a local check)."
  type        = list(string)
  default     = []
}

variable "enable_autoscaling" {
  description = "Scale the worker on the queues' backlog per task (off only where Application Auto Scaling is unavailable: the local emulator)."
  type        = bool
  default     = true
}

variable "visibility_timeout_secs" {
  description = "The queues' visibility timeout, and the worker's."
  type        = number
  default     = 300
}

variable "alerts" {
  description = "trailvault's alerts: with enabled, an encrypted SNS topic (module.archive), the subscriptions given, and the worker's [alerts] (builtin rule sets, suppress_secs per rule, custom rules as CloudWatch Logs filter patterns; event_bus_arn: an EventBridge bus as well). Off by default: a worker image without alerts refuses a configuration with [alerts], and a topic nobody subscribes to alerts nobody."
  type = object({
    enabled = optional(bool, false)
    subscriptions = optional(list(object({
      protocol = string
      endpoint = string
    })), [])
    event_bus_arn = optional(string)
    builtin       = optional(list(string), ["cis"])
    suppress_secs = optional(map(number), {})
    rules = optional(list(object({
      name        = string
      pattern     = string
      severity    = optional(string, "medium")
      description = optional(string)
    })), [])
  })
  default  = {}
  nullable = false
}

variable "athena_first_day" {
  description = "The first delivery day in the archive (yyyy/MM/dd), where Athena's date partitions begin: the day trailvault started, or the oldest day backfill brought in."
  type        = string
  default     = "2026/01/01"
}

# ---------------------------------------------------------------------------------------------
# Only for applying this example to the local emulator (infra/test does).

variable "endpoint" {
  description = "A local AWS emulator's URL (http://127.0.0.1:PORT). Null in AWS."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let destroy empty the buckets (test stacks with GOVERNANCE retention only)."
  type        = bool
  default     = false
}
