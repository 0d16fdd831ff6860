# One region's notification queue in the security account, with its dead-letter queue and a
# policy that admits only S3 sending on behalf of the member buckets it names.

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name}-dlq"
  message_retention_seconds = 1209600 # 14 days: the maximum, longer than the queue's own
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn
  tags                      = var.tags
}

resource "aws_sqs_queue" "this" {
  name                       = var.name
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = var.kms_key_arn == null ? true : null
  kms_master_key_id          = var.kms_key_arn
  tags                       = var.tags

  lifecycle {
    # aws_sqs_queue_redrive_policy below owns it.
    ignore_changes = [redrive_policy]
  }
}

# The redrive policy is its own resource: written inline, a change to it would rewrite the
# queue's attributes and could race the queue policy.
resource "aws_sqs_queue_redrive_policy" "this" {
  queue_url = aws_sqs_queue.this.id
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
}

data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "S3NotificationsFromMemberBuckets"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this.arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = length(var.source_buckets) > 0 ? [for b in var.source_buckets : b.arn] : ["arn:aws:s3:::none"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = length(var.source_buckets) > 0 ? distinct([for b in var.source_buckets : b.account_id]) : ["000000000000"]
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  queue_url = aws_sqs_queue.this.id
  policy    = data.aws_iam_policy_document.queue.json
  # One queue attribute at a time: some SQS implementations rewrite every attribute on
  # SetQueueAttributes, and two concurrent writes then lose one.
  depends_on = [aws_sqs_queue_redrive_policy.this]
}
