variable "role_name" {
  description = "The reader role's name; the same in every member account (the worker may assume it by this name in any account)."
  type        = string
  default     = "trailvault-reader"
}

variable "worker_role_arn" {
  description = "The worker's role in the security account (module archive's worker_role_arn): the only principal the reader role trusts."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.worker_role_arn))
    error_message = "worker_role_arn must be an IAM role ARN."
  }
}

variable "external_id" {
  description = "The ExternalId the worker must present (accounts[].external_id in trailvault's configuration): protection against the confused deputy. Treat it as a secret."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@:/_-]+$", var.external_id)) && length(var.external_id) >= 2 && length(var.external_id) <= 1224
    error_message = "external_id must be 2 to 1224 characters of letters, digits and +=,.@:/_-."
  }
}

variable "trail_buckets" {
  description = "This account's CloudTrail buckets (any region): the reader role may read them. kms_key_arn: the key CloudTrail encrypts the bucket's logs with, if any (the role gets kms:Decrypt on it)."
  type = list(object({
    name        = string
    kms_key_arn = optional(string)
  }))

  validation {
    condition     = length(var.trail_buckets) > 0
    error_message = "trail_buckets needs at least one bucket."
  }
}

variable "notifications" {
  description = "Buckets in this provider's region whose new CloudTrail objects notify the central queue of the region (module queue's arn). A bucket in another region needs module member-notification with that region's provider."
  type = list(object({
    bucket    = string
    queue_arn = string
  }))
  default = []
}

variable "allow_cleanup" {
  description = "Let the reader role delete object versions, for `trailvault source-cleanup` (which only deletes what the archive holds byte for byte). Off by default: the role is read-only."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
