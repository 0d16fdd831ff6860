variable "name" {
  description = "Prefix of the names this module creates (workgroup, results key alias, the auditor policy)."
  type        = string
  default     = "trailvault"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{1,40}$", var.name))
    error_message = "name must be 1 to 40 letters, digits, dots, hyphens or underscores (an Athena workgroup name)."
  }
}

variable "database_name" {
  description = "The Glue database holding the tables and the cloudtrail and insights views (lowercase: Athena folds names to lowercase)."
  type        = string
  default     = "trailvault"

  validation {
    condition     = can(regex("^[a-z0-9_]{1,255}$", var.database_name))
    error_message = "database_name must be lowercase letters, digits and underscores (Athena folds names to lowercase)."
  }
}

variable "archive_bucket" {
  description = "The archive bucket (module archive's bucket)."
  type        = string
}

variable "archive_kms_key_arn" {
  description = "The archive key (module archive's kms_key_arn): Athena reads the archived files with the auditor's kms:Decrypt on it."
  type        = string
}

variable "key_prefix" {
  description = "trailvault's archive.key_prefix: archive keys are {key_prefix}{source bucket}/{source key}. Empty, or ending in \"/\"."
  type        = string
  default     = ""

  validation {
    condition     = var.key_prefix == "" || (endswith(var.key_prefix, "/") && !startswith(var.key_prefix, "/"))
    error_message = "key_prefix must be empty or end with \"/\" (and not start with one), as archive.key_prefix."
  }
}

variable "trails" {
  description = <<-EOT
    Every place in the archive where CloudTrail files land: one per source bucket and trail prefix (and organization, for an organization trail). Each becomes a table cloudtrail_<name> and insights_<name>, whose partition projection lists the accounts that deliver there (a member's own bucket: that account; an organization trail's bucket: every account of the organization). The views cloudtrail and insights are their union.
    - name: lowercase letters, digits, underscores (the table names' suffix)
    - bucket: the source bucket (the archive keeps its name in every key)
    - prefix: the trail's S3 key prefix, empty or ending in "/" (what comes before AWSLogs/)
    - organization_id: o-... for an organization trail (AWSLogs/o-.../ACCOUNT/), null otherwise
    - accounts: the 12-digit accounts whose logs land there
  EOT
  type = list(object({
    name            = string
    bucket          = string
    prefix          = optional(string, "")
    organization_id = optional(string)
    accounts        = list(string)
  }))

  validation {
    condition     = length(var.trails) > 0
    error_message = "trails needs at least one trail location."
  }
  validation {
    condition     = alltrue([for t in var.trails : can(regex("^[a-z0-9_]{1,40}$", t.name))])
    error_message = "trails[*].name must be 1 to 40 lowercase letters, digits or underscores (it names Glue tables)."
  }
  validation {
    condition     = length(distinct([for t in var.trails : t.name])) == length(var.trails)
    error_message = "trails[*].name must be unique."
  }
  validation {
    condition     = alltrue([for t in var.trails : t.prefix == "" || (endswith(t.prefix, "/") && !startswith(t.prefix, "/"))])
    error_message = "trails[*].prefix must be empty or end with \"/\" (the trail's S3 key prefix, as in PREFIX/AWSLogs/)."
  }
  validation {
    condition     = alltrue([for t in var.trails : t.organization_id == null || can(regex("^o-[a-z0-9]{10,32}$", t.organization_id))])
    error_message = "trails[*].organization_id must be null or an organization id (o-a1b2c3d4e5)."
  }
  validation {
    condition     = alltrue([for t in var.trails : length(t.accounts) > 0 && alltrue([for a in t.accounts : can(regex("^[0-9]{12}$", a))])])
    error_message = "trails[*].accounts must list at least one 12-digit account id."
  }
}

variable "regions" {
  description = "The regions whose logs the trails deliver (the region partition's values). Each one listed costs one S3 listing per account and day a query reads; list only the regions your trails log."
  type        = list(string)

  validation {
    condition     = length(var.regions) > 0 && alltrue([for r in var.regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])
    error_message = "regions must list AWS regions (eu-west-1)."
  }
}

variable "first_day" {
  description = "The first delivery day the archive holds, yyyy/MM/dd (the date partition's range is first_day to today). A query without a date filter reads every day since."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{4}/[0-9]{2}/[0-9]{2}$", var.first_day))
    error_message = "first_day must be a day as yyyy/MM/dd (2025/01/01), as CloudTrail names its date folders."
  }
}

variable "bytes_scanned_cutoff_per_query" {
  description = "Athena cancels a query of the workgroup once it has scanned this many bytes (at least 10 MB). CloudTrail's gzip files count compressed: 100 GiB is months of a large organization."
  type        = number
  default     = 107374182400

  validation {
    condition     = var.bytes_scanned_cutoff_per_query >= 10485760
    error_message = "bytes_scanned_cutoff_per_query must be at least 10485760 (10 MB), Athena's minimum."
  }
}

variable "results_bucket_name" {
  description = "The bucket this module creates for query results. Null: \"<archive_bucket>-athena-results\"."
  type        = string
  default     = null
}

variable "results_kms_key_arn" {
  description = "The KMS key query results are encrypted with (SSE_KMS). Null: the module creates one (rotated yearly)."
  type        = string
  default     = null
}

variable "results_expiration_days" {
  description = "Days a query result is kept: results are copies of archived records, not evidence."
  type        = number
  default     = 30

  validation {
    condition     = var.results_expiration_days >= 1
    error_message = "results_expiration_days must be at least 1."
  }
}

variable "auditor_role_name" {
  description = "The role to give the Athena permissions (module archive's auditor_role_name), as an inline policy; null: none (use the auditor_policy_json output yourself)."
  type        = string
  default     = null
}

variable "enforce_tls" {
  description = "Deny requests to the results bucket without TLS. Off only where conditional bucket policies are not supported (the local emulator)."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let destroy delete the workgroup's query history and empty the results bucket (test stacks)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
