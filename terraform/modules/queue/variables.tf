variable "name" {
  description = "The queue's name. S3 can only notify a queue in the bucket's own region, so an organization has one of these per region (trailvault-eu-west-1, ...)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,75}$", var.name))
    error_message = "name must be 1 to 75 letters, digits, hyphens or underscores (\"-dlq\" is appended for the dead-letter queue); FIFO queues cannot receive S3 notifications."
  }
}

variable "source_buckets" {
  description = "The member accounts' CloudTrail buckets in this region that may send notifications: bucket ARN and the account that owns it (checked as aws:SourceArn and aws:SourceAccount)."
  type = list(object({
    arn        = string
    account_id = string
  }))

  validation {
    condition     = alltrue([for b in var.source_buckets : can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", b.arn)) && can(regex("^[0-9]{12}$", b.account_id))])
    error_message = "each source bucket needs a bucket ARN (arn:aws:s3:::NAME) and a 12-digit account_id."
  }
}

variable "visibility_timeout_seconds" {
  description = "Seconds a received message stays hidden; must equal worker.visibility_timeout_secs in trailvault's configuration (the worker extends it while a copy runs)."
  type        = number
  default     = 300

  validation {
    condition     = var.visibility_timeout_seconds >= 10 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be between 10 and 43200 (SQS's limit, and trailvault's)."
  }
}

variable "message_retention_seconds" {
  description = "How long an unprocessed notification is kept. Four days by default: long enough to outlast a weekend outage of the worker."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds < 1209600
    error_message = "message_retention_seconds must be at least 60 and below 1209600 (14 days), so that the dead-letter queue (14 days) outlives it."
  }
}

variable "max_receive_count" {
  description = "Receives before the redrive policy moves a message the worker cannot archive to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "kms_key_arn" {
  description = "A KMS key for the queues' encryption. Null (the default) uses SQS-managed encryption (SSE-SQS), which S3 can send to with no key policy; a customer key must let s3.amazonaws.com use kms:GenerateDataKey and kms:Decrypt."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
