# One CloudTrail bucket's notification to the central queue of its region. A bucket has one
# notification configuration: this replaces any other on the bucket, so a bucket whose owner
# also notifies elsewhere must merge the two in one configuration.

resource "aws_s3_bucket_notification" "this" {
  bucket = var.bucket

  queue {
    id            = "trailvault"
    queue_arn     = var.queue_arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = var.prefix
  }
}
