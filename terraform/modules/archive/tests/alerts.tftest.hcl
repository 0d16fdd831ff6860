# The alerts topic: off by default; on, an SNS topic encrypted with a rotating key of its own,
# its subscriptions; nonsense refused at plan. Offline: the AWS provider is mocked (the topic,
# its key and the worker's policy are checked on the emulator, in tests/terraform.rs).

mock_provider "aws" {
  # The provider checks that policies are JSON even when mocked.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
  # The subscriptions and the topic policy check that the topic's ARN is one.
  mock_resource "aws_sns_topic" {
    defaults = {
      arn = "arn:aws:sns:eu-west-1:111111111111:trailvault-alerts"
    }
  }
}

variables {
  bucket_name     = "acme-cloudtrail-archive"
  queue_arns      = ["arn:aws:sqs:eu-west-1:111111111111:trailvault-eu-west-1"]
  organization_id = "o-a1b2c3d4e5"
}

run "alerts_are_off_by_default" {
  command = plan

  assert {
    condition     = length(aws_sns_topic.alerts) == 0 && length(aws_kms_key.alerts) == 0 && output.alerts_topic_arn == null
    error_message = "without alerts, no topic and no key"
  }
}

run "alerts_make_an_encrypted_topic_and_its_subscriptions" {
  command = apply
  variables {
    alerts = {
      enabled = true
      subscriptions = [
        { protocol = "sqs", endpoint = "arn:aws:sqs:eu-west-1:111111111111:security-alerts" },
        { protocol = "email", endpoint = "security@example.com" },
      ]
    }
  }

  assert {
    condition     = aws_sns_topic.alerts[0].kms_master_key_id == aws_kms_key.alerts[0].arn && aws_kms_key.alerts[0].enable_key_rotation
    error_message = "the topic is encrypted with its own key, which rotates"
  }
  assert {
    condition     = [for s in aws_sns_topic_subscription.alerts : s.protocol] == ["sqs", "email"]
    error_message = "one subscription per entry, in order"
  }
  assert {
    condition     = output.alerts_topic_arn == aws_sns_topic.alerts[0].arn && output.alerts_kms_key_arn == aws_kms_key.alerts[0].arn
    error_message = "the outputs name the topic and its key"
  }
}

run "an_event_bus_alone_makes_no_topic" {
  command = plan
  variables {
    alerts = {
      enabled       = true
      topic         = false
      event_bus_arn = "arn:aws:events:eu-west-1:111111111111:event-bus/security"
    }
  }

  assert {
    condition     = length(aws_sns_topic.alerts) == 0 && length(aws_kms_key.alerts) == 0
    error_message = "topic = false makes no topic"
  }
}

run "alerts_with_nowhere_to_go_are_refused" {
  command = plan
  variables {
    alerts = { enabled = true, topic = false }
  }
  expect_failures = [var.alerts]
}

run "plain_http_is_refused" {
  command = plan
  variables {
    alerts = {
      enabled       = true
      subscriptions = [{ protocol = "http", endpoint = "http://alerts.example.com/" }]
    }
  }
  expect_failures = [var.alerts]
}

run "subscriptions_without_a_topic_are_refused" {
  command = plan
  variables {
    alerts = {
      enabled       = true
      topic         = false
      event_bus_arn = "arn:aws:events:eu-west-1:111111111111:event-bus/security"
      subscriptions = [{ protocol = "email", endpoint = "security@example.com" }]
    }
  }
  expect_failures = [var.alerts]
}

run "a_bus_name_is_not_a_bus_arn" {
  command = plan
  variables {
    alerts = { enabled = true, event_bus_arn = "security" }
  }
  expect_failures = [var.alerts]
}
