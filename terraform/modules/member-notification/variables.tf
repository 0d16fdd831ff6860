variable "bucket" {
  description = "A CloudTrail bucket in this provider's region."
  type        = string
}

variable "queue_arn" {
  description = "The central queue of the bucket's region (module queue's arn): S3 notifies only queues in the bucket's own region."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.queue_arn))
    error_message = "queue_arn must be an SQS queue ARN."
  }
}

variable "prefix" {
  description = "Only objects under this prefix notify (where CloudTrail writes: [prefix/]AWSLogs/)."
  type        = string
  default     = "AWSLogs/"
}
