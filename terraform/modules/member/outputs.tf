output "role_arn" {
  description = "The reader role: accounts[].reader_role_arn in trailvault's configuration."
  value       = aws_iam_role.reader.arn
}

output "role_name" {
  description = "The reader role's name."
  value       = aws_iam_role.reader.name
}
