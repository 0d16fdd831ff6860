output "archive_bucket" {
  description = "The archive bucket."
  value       = module.archive.bucket
}

output "worker_role_arn" {
  description = "The worker's role (the ECS task role)."
  value       = module.archive.worker_role_arn
}

output "auditor_role_arn" {
  description = "The read-only auditor role, for `trailvault verify`."
  value       = module.archive.auditor_role_arn
}

output "athena_workgroup" {
  description = "The auditors' Athena workgroup: queries there read the views cloudtrail and insights of athena_database (queries/ holds the named queries)."
  value       = module.athena.workgroup
}

output "athena_database" {
  description = "The Glue database with the cloudtrail and insights views."
  value       = module.athena.database
}

output "report_signing_key_arn" {
  description = "The auditors' key for signing verification reports: `trailvault verify --report FILE --sign KEY`."
  value       = module.archive.report_signing_key_arn
}

output "alerts_topic_arn" {
  description = "The alerts topic (null with alerts off): subscribe more endpoints to it."
  value       = module.archive.alerts_topic_arn
}

output "alerts_kms_key_arn" {
  description = "The key the alerts topic is encrypted with (null with alerts off)."
  value       = module.archive.alerts_kms_key_arn
}

output "queue_urls" {
  description = "The notification queues, by region."
  value = {
    (var.home_region)   = module.queue_home.url
    (var.second_region) = module.queue_second.url
  }
}

output "dead_letter_queue_urls" {
  description = "Where messages the worker cannot archive end up, by region."
  value = {
    (var.home_region)   = module.queue_home.dead_letter_url
    (var.second_region) = module.queue_second.dead_letter_url
  }
}

output "reader_role_arns" {
  description = "Each member account's reader role."
  value = {
    (var.member_a.name) = module.member_a.role_arn
    (var.member_b.name) = module.member_b.role_arn
  }
}

output "config_toml" {
  description = "trailvault's configuration as the worker gets it: `terraform output -raw config_toml > trailvault.toml` for `trailvault config check --connect` or `trailvault verify`."
  value       = module.worker.config_toml
  sensitive   = true
}
