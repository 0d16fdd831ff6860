# organization_id, which bounds the worker's sts:AssumeRole to the organization's accounts, is
# refused at plan unless it is an Organizations id. Offline: the AWS provider is mocked (the
# rendered policy is checked on the emulator, in tests/terraform.rs).

mock_provider "aws" {
  # The provider checks that policies are JSON even when mocked.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  bucket_name     = "acme-cloudtrail-archive"
  queue_arns      = ["arn:aws:sqs:eu-west-1:111111111111:trailvault-eu-west-1"]
  organization_id = "o-a1b2c3d4e5"
}

run "an_organization_id_passes" {
  command = plan
}

run "the_longest_organization_id_passes" {
  command = plan
  variables {
    organization_id = "o-abcdefghij0123456789abcdefghij01"
  }
}

run "an_account_id_is_refused" {
  command = plan
  variables {
    organization_id = "111111111111"
  }
  expect_failures = [var.organization_id]
}

run "a_short_id_is_refused" {
  command = plan
  variables {
    organization_id = "o-a1b2c3d4e"
  }
  expect_failures = [var.organization_id]
}

run "upper_case_is_refused" {
  command = plan
  variables {
    organization_id = "o-A1B2C3D4E5"
  }
  expect_failures = [var.organization_id]
}

run "the_wildcard_is_refused" {
  command = plan
  variables {
    organization_id = "o-*"
  }
  expect_failures = [var.organization_id]
}
