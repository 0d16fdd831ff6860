# trailvault's [alerts], rendered only when given, in TOML the worker's parser reads (strings
# through jsonencode: a pattern's quotes are escaped, not cut short); nonsense refused at plan.
# Offline: the AWS provider is mocked.

mock_provider "aws" {
  # The provider checks that policies are JSON even when mocked.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  image         = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/trailvault@sha256:0000000000000000000000000000000000000000000000000000000000000000"
  task_role_arn = "arn:aws:iam::111111111111:role/trailvault-worker"
  subnet_ids    = ["subnet-00000000000000001"]
  vpc_id        = "vpc-00000000000000001"
  config = {
    archive = {
      bucket  = "acme-cloudtrail-archive"
      region  = "eu-west-1"
      kms_key = "arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-0000-0000-000000000000"
    }
    queues    = [{ url = "https://sqs.eu-west-1.amazonaws.com/111111111111/trailvault-eu-west-1", region = "eu-west-1" }]
    accounts  = []
    retention = { mode = "COMPLIANCE", years = 7 }
  }
}

run "no_alerts_render_no_section" {
  command = plan

  assert {
    condition     = !strcontains(output.config_toml, "[alerts")
    error_message = "without config.alerts, no [alerts]"
  }
}

run "alerts_render_the_section" {
  command = plan
  variables {
    config = {
      archive = {
        bucket  = "acme-cloudtrail-archive"
        region  = "eu-west-1"
        kms_key = "arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-0000-0000-000000000000"
      }
      queues    = [{ url = "https://sqs.eu-west-1.amazonaws.com/111111111111/trailvault-eu-west-1", region = "eu-west-1" }]
      accounts  = []
      retention = { mode = "COMPLIANCE", years = 7 }
      alerts = {
        sns_topic_arn = "arn:aws:sns:eu-west-1:111111111111:trailvault-alerts"
        suppress_secs = { "unauthorized-api-calls" = 900 }
        rules = [
          { name = "s3-bucket-deleted", pattern = "{ $.eventName = \"DeleteBucket\" }", severity = "high", description = "A bucket was deleted" },
          { name = "console-login", pattern = "{ $.eventName = ConsoleLogin }" },
        ]
      }
    }
  }

  assert {
    condition     = strcontains(output.config_toml, "\n[alerts]\nsns_topic_arn = \"arn:aws:sns:eu-west-1:111111111111:trailvault-alerts\"\nbuiltin = [\"cis\"]\n\n[alerts.suppress_secs]\n\"unauthorized-api-calls\" = 900\n")
    error_message = "the destination, the default built-in set and the suppression window"
  }
  assert {
    condition     = strcontains(output.config_toml, "\n[[alerts.rules]]\nname = \"s3-bucket-deleted\"\npattern = \"{ $.eventName = \\\"DeleteBucket\\\" }\"\nseverity = \"high\"\ndescription = \"A bucket was deleted\"\n")
    error_message = "a custom rule, its pattern's quotes escaped"
  }
  assert {
    condition     = strcontains(output.config_toml, "\n[[alerts.rules]]\nname = \"console-login\"\npattern = \"{ $.eventName = ConsoleLogin }\"\nseverity = \"medium\"\n\n[telemetry]")
    error_message = "a rule without severity is medium, without description has none"
  }
}

run "alerts_with_nowhere_to_go_are_refused" {
  command = plan
  variables {
    config = {
      archive = {
        bucket  = "acme-cloudtrail-archive"
        region  = "eu-west-1"
        kms_key = "arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-0000-0000-000000000000"
      }
      queues    = [{ url = "https://sqs.eu-west-1.amazonaws.com/111111111111/trailvault-eu-west-1", region = "eu-west-1" }]
      accounts  = []
      retention = { mode = "COMPLIANCE", years = 7 }
      alerts    = { builtin = ["cis"] }
    }
  }
  expect_failures = [var.config]
}

run "an_unknown_severity_is_refused" {
  command = plan
  variables {
    config = {
      archive = {
        bucket  = "acme-cloudtrail-archive"
        region  = "eu-west-1"
        kms_key = "arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-0000-0000-000000000000"
      }
      queues    = [{ url = "https://sqs.eu-west-1.amazonaws.com/111111111111/trailvault-eu-west-1", region = "eu-west-1" }]
      accounts  = []
      retention = { mode = "COMPLIANCE", years = 7 }
      alerts = {
        sns_topic_arn = "arn:aws:sns:eu-west-1:111111111111:trailvault-alerts"
        rules         = [{ name = "s3-bucket-deleted", pattern = "{ $.eventName = DeleteBucket }", severity = "urgent" }]
      }
    }
  }
  expect_failures = [var.config]
}

run "two_rules_of_one_name_are_refused" {
  command = plan
  variables {
    config = {
      archive = {
        bucket  = "acme-cloudtrail-archive"
        region  = "eu-west-1"
        kms_key = "arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-0000-0000-000000000000"
      }
      queues    = [{ url = "https://sqs.eu-west-1.amazonaws.com/111111111111/trailvault-eu-west-1", region = "eu-west-1" }]
      accounts  = []
      retention = { mode = "COMPLIANCE", years = 7 }
      alerts = {
        sns_topic_arn = "arn:aws:sns:eu-west-1:111111111111:trailvault-alerts"
        rules = [
          { name = "s3-bucket-deleted", pattern = "{ $.eventName = DeleteBucket }" },
          { name = "s3-bucket-deleted", pattern = "{ $.eventName = DeleteBucketPolicy }" },
        ]
      }
    }
  }
  expect_failures = [var.config]
}

run "a_window_over_a_day_is_refused" {
  command = plan
  variables {
    config = {
      archive = {
        bucket  = "acme-cloudtrail-archive"
        region  = "eu-west-1"
        kms_key = "arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-0000-0000-000000000000"
      }
      queues    = [{ url = "https://sqs.eu-west-1.amazonaws.com/111111111111/trailvault-eu-west-1", region = "eu-west-1" }]
      accounts  = []
      retention = { mode = "COMPLIANCE", years = 7 }
      alerts = {
        sns_topic_arn = "arn:aws:sns:eu-west-1:111111111111:trailvault-alerts"
        suppress_secs = { "unauthorized-api-calls" = 86401 }
      }
    }
  }
  expect_failures = [var.config]
}
