variable "name" {
  description = "Name of the ECS service, task family, log group and roles."
  type        = string
  default     = "trailvault"
}

variable "image" {
  description = "The trailvault container image (infra/Dockerfile), by digest in production: REGISTRY/trailvault@sha256:..."
  type        = string
}

variable "task_role_arn" {
  description = "The worker role (module archive's worker_role_arn); it must trust ecs-tasks.amazonaws.com."
  type        = string
}

variable "cluster_arn" {
  description = "An existing ECS cluster to run in; null creates one (with Container Insights, which the autoscaling metric needs)."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Private subnets for the tasks (they need HTTPS to S3, SQS, KMS and STS: a NAT gateway or VPC endpoints)."
  type        = list(string)
}

variable "vpc_id" {
  description = "The subnets' VPC, for the security group created when security_group_ids is empty."
  type        = string
  default     = null
}

variable "security_group_ids" {
  description = "Security groups for the tasks; empty creates one that allows HTTPS out and nothing in."
  type        = list(string)
  default     = []
}

variable "assign_public_ip" {
  description = "Give tasks a public IP (only for subnets without a NAT gateway)."
  type        = bool
  default     = false
}

variable "cpu" {
  description = "Fargate CPU units per task."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Fargate memory per task (MiB). Each in-flight copy holds at most one 8 MiB part; 1024 leaves room for worker.max_in_flight = 32."
  type        = number
  default     = 1024
}

variable "min_tasks" {
  description = "Replicas at least (also the initial count)."
  type        = number
  default     = 1
}

variable "max_tasks" {
  description = "Replicas at most, when the backlog grows."
  type        = number
  default     = 4

  validation {
    condition     = var.max_tasks >= 1
    error_message = "max_tasks must be at least 1."
  }
}

variable "backlog_per_task" {
  description = "Target of the autoscaling policy: visible notifications per running task."
  type        = number
  default     = 200
}

variable "enable_autoscaling" {
  description = "Scale on the queues' backlog per task. Turn off only where Application Auto Scaling is unavailable (the local emulator)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days the worker's logs are kept in CloudWatch Logs."
  type        = number
  default     = 365
}

variable "log_kms_key_arn" {
  description = "A KMS key for the log group; null creates one."
  type        = string
  default     = null
}

variable "config" {
  description = "trailvault's configuration, rendered to TOML and handed to the task from an SSM SecureString (TRAILVAULT_CONFIG_TOML). Same fields as trailvault.example.toml; telemetry is set by the module (JSON logs, /healthz on 9090)."
  type = object({
    archive = object({
      bucket      = string
      region      = string
      kms_key     = string
      signing_key = optional(string)
      key_prefix  = optional(string, "")
    })
    endpoint_url = optional(string)
    queues = list(object({
      url    = string
      region = string
    }))
    accounts = list(object({
      id                 = string
      name               = string
      reader_role_arn    = string
      external_id        = string
      cleanup_after_days = optional(number)
      buckets = list(object({
        name   = string
        region = string
      }))
    }))
    retention = object({
      mode                    = string
      years                   = optional(number)
      days                    = optional(number)
      reconcile               = optional(string, "report")
      reconcile_interval_secs = optional(number, 3600)
      lifecycle = optional(object({
        transitions = optional(list(object({
          days          = number
          storage_class = string
        })), [])
        expiration_days                 = optional(number)
        noncurrent_expiration_days      = optional(number)
        expired_delete_markers          = optional(bool, true)
        abort_incomplete_multipart_days = optional(number, 7)
      }), {})
    })
    worker = optional(object({
      max_in_flight           = optional(number, 32)
      visibility_timeout_secs = optional(number, 300)
      shutdown_grace_secs     = optional(number, 25)
    }), {})
    manifest_period_secs = optional(number, 60)
    sweep = optional(object({
      interval_secs = optional(number, 900)
      window_secs   = optional(number, 7200)
      min_age_secs  = optional(number, 300)
    }), {})
    discovery = optional(object({
      organizations_role_arn = optional(string)
      reader_role_arn        = optional(string, "arn:aws:iam::{account}:role/trailvault-reader")
      external_id            = string
      interval_secs          = optional(number, 300)
      exclude                = optional(list(string), [])
    }))
    # trailvault's [alerts]; null (the default) renders no section: alerts off.
    alerts = optional(object({
      sns_topic_arn = optional(string)
      event_bus_arn = optional(string)
      builtin       = optional(list(string), ["cis"])
      suppress_secs = optional(map(number), {})
      rules = optional(list(object({
        name        = string
        pattern     = string
        severity    = optional(string, "medium")
        description = optional(string)
      })), [])
    }))
  })
  sensitive = true

  # trailvault's own rule (src/config/completeness.rs, MIN_SECRET_CHARS), caught at plan
  # rather than by a worker that fails to start. lookup() rather than .external_id: Terraform
  # prints the values of the attributes a failed condition names, sensitive or not.
  validation {
    condition     = var.config.discovery == null ? true : length(replace(lookup(var.config.discovery, "external_id", ""), "{account}", "")) >= 16
    error_message = "config.discovery.external_id can be guessed from the account id: besides {account} it needs a random value of at least 16 characters (e.g. \"trailvault-{account}-\" followed by the output of `openssl rand -hex 16`), the same in every discovered account's reader role trust policy."
  }

  # trailvault's own rules for [alerts] (src/config/alerts.rs), caught at plan; `trailvault
  # config check` has the final word (the rules' patterns, built-in names).
  validation {
    condition     = var.config.alerts == null ? true : (var.config.alerts.sns_topic_arn != null || var.config.alerts.event_bus_arn != null)
    error_message = "config.alerts needs a destination: sns_topic_arn, event_bus_arn or both (leave config.alerts out to turn alerts off)."
  }
  validation {
    condition     = var.config.alerts == null ? true : alltrue([for r in var.config.alerts.rules : contains(["low", "medium", "high", "critical"], r.severity)])
    error_message = "config.alerts.rules[*].severity must be low, medium, high or critical."
  }
  validation {
    condition = var.config.alerts == null ? true : (alltrue([
      for r in var.config.alerts.rules : can(regex("^[a-z0-9.-]{1,64}$", r.name))
    ]) && length(distinct([for r in var.config.alerts.rules : r.name])) == length(var.config.alerts.rules))
    error_message = "config.alerts.rules[*].name must be 1 to 64 characters of a-z, 0-9, '-' and '.', each rule's its own."
  }
  validation {
    condition = var.config.alerts == null ? true : alltrue([
      for secs in values(var.config.alerts.suppress_secs) : secs >= 0 && secs <= 86400 && floor(secs) == secs
    ])
    error_message = "config.alerts.suppress_secs values are whole seconds from 0 (no suppression) to 86400 (a day)."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
