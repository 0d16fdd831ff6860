output "bucket" {
  description = "The bucket that now notifies the queue."
  value       = aws_s3_bucket_notification.this.bucket
}
