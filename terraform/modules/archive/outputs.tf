output "bucket" {
  description = "The archive bucket: archive.bucket in trailvault's configuration."
  value       = aws_s3_bucket.archive.id
}

output "bucket_arn" {
  description = "The archive bucket's ARN."
  value       = aws_s3_bucket.archive.arn
}

output "region" {
  description = "The archive's region: archive.region."
  value       = local.region
}

output "kms_key_arn" {
  description = "The archive key: archive.kms_key."
  value       = aws_kms_key.archive.arn
}

output "signing_key_arn" {
  description = "The manifest signing key: archive.signing_key."
  value       = aws_kms_key.signing.arn
}

output "worker_role_arn" {
  description = "The worker's role: the ECS task role, and the principal every member account's reader role trusts."
  value       = aws_iam_role.worker.arn
}

output "worker_role_name" {
  description = "The worker role's name."
  value       = aws_iam_role.worker.name
}

output "auditor_role_arn" {
  description = "The read-only auditor role (null when no auditor principals were given)."
  value       = one(aws_iam_role.auditor[*].arn)
}

output "report_signing_key_arn" {
  description = "The auditors' key for signing verification reports (`trailvault verify --report FILE --sign KEY`); null without auditors."
  value       = one(aws_kms_key.report_signing[*].arn)
}

output "access_log_bucket" {
  description = "The bucket that receives the archive bucket's server access logs."
  value       = aws_s3_bucket.logs.id
}

output "alerts_topic_arn" {
  description = "The alerts topic: alerts.sns_topic_arn in trailvault's configuration (null without alerts, or with topic = false)."
  value       = one(aws_sns_topic.alerts[*].arn)
}

output "alerts_kms_key_arn" {
  description = "The key the alerts topic is encrypted with; whoever reads a subscribed queue encrypted with it needs kms:Decrypt on it (null without the topic)."
  value       = one(aws_kms_key.alerts[*].arn)
}

output "auditor_role_name" {
  description = "The auditor role's name (null when no auditor principals were given), known at plan: for attaching more read-only permissions to it (module athena's auditor_role_name)."
  value       = one(aws_iam_role.auditor[*].name)
}
