# The discovery ExternalId is refused at plan when it is guessable from the account id: the
# same rule as trailvault's configuration (at least 16 characters besides {account}).
# Offline: the AWS provider is mocked; only the variable's validation is under test.

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
    discovery = { external_id = "trailvault-{account}-5e0c7a9b1d2f4a68" }
  }
}

run "sixteen_characters_besides_the_account_pass" {
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
      discovery = { external_id = "tv-{account}-0123456789ab" } # "tv--0123456789ab": 16
    }
  }
}

run "no_discovery_passes" {
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
    }
  }
}

run "only_the_account_id_is_refused" {
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
      discovery = { external_id = "{account}" }
    }
  }
  expect_failures = [var.config]
}

run "fifteen_characters_besides_the_account_are_refused" {
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
      discovery = { external_id = "tv-{account}-0123456789a" } # "tv--0123456789a": 15
    }
  }
  expect_failures = [var.config]
}
