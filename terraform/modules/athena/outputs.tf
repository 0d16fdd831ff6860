output "database" {
  description = "The Glue database: the catalog's schema for Athena (SELECT ... FROM <database>.cloudtrail)."
  value       = aws_glue_catalog_database.this.name
}

output "workgroup" {
  description = "The Athena workgroup to run queries in (--work-group, or the console's workgroup menu)."
  value       = aws_athena_workgroup.this.name
}

output "workgroup_arn" {
  description = "The workgroup's ARN."
  value       = aws_athena_workgroup.this.arn
}

output "tables" {
  description = "Each trail location's tables (cloudtrail_<name>, insights_<name>) with their storage.location.template; the views cloudtrail and insights are their union."
  value       = { for k, t in aws_glue_catalog_table.files : k => t.parameters["storage.location.template"] }
}

output "results_bucket" {
  description = "Where the workgroup writes query results (s3://<bucket>/results/), expiring after results_expiration_days."
  value       = aws_s3_bucket.results.id
}

output "results_kms_key_arn" {
  description = "The key query results are encrypted with."
  value       = local.results_key
}

output "auditor_policy_json" {
  description = "The IAM policy an auditor needs for Athena over the archive (attached to auditor_role_name when given)."
  value       = data.aws_iam_policy_document.auditor.json
}
