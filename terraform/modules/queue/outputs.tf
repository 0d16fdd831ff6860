output "url" {
  description = "The queue's URL: a [[queues]] url in trailvault's configuration."
  value       = aws_sqs_queue.this.id
}

output "arn" {
  description = "The queue's ARN: the member buckets' notification target, and the worker's permission."
  value       = aws_sqs_queue.this.arn
}

output "name" {
  description = "The queue's name (its label in trailvault's metrics, and the autoscaling metric's dimension)."
  value       = aws_sqs_queue.this.name
}

output "dead_letter_arn" {
  description = "The dead-letter queue's ARN (the worker reads its depth)."
  value       = aws_sqs_queue.dead_letter.arn
}

output "dead_letter_url" {
  description = "The dead-letter queue's URL, for operators who inspect and redrive parked messages."
  value       = aws_sqs_queue.dead_letter.id
}
