output "service_name" {
  description = "The ECS service running the worker."
  value       = aws_ecs_service.this.name
}

output "cluster_arn" {
  description = "The cluster it runs in."
  value       = local.cluster
}

output "log_group" {
  description = "The worker's log group (JSON events)."
  value       = aws_cloudwatch_log_group.this.name
}

output "config_parameter" {
  description = "The SSM parameter holding the rendered configuration."
  value       = aws_ssm_parameter.config.name
}

output "config_toml" {
  description = "The rendered configuration, as the worker gets it (contains the ExternalIds)."
  value       = local.config
  sensitive   = true
}
