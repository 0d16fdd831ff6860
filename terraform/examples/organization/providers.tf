# One provider per account and region: Terraform assumes admin_role_name in each account.
# With var.endpoint set, every provider talks to the local emulator instead of AWS.

locals {
  emulator = var.endpoint != null
  role     = "arn:aws:iam::%s:role/${var.admin_role_name}"
}

provider "aws" {
  alias  = "security"
  region = var.home_region
  assume_role {
    role_arn = format(local.role, var.security_account_id)
  }
  access_key                  = local.emulator ? "test" : null
  secret_key                  = local.emulator ? "test" : null
  s3_use_path_style           = local.emulator
  skip_credentials_validation = local.emulator
  skip_metadata_api_check     = local.emulator
  skip_region_validation      = local.emulator
  # The account is asked for even in the emulator: the Athena workgroup's ARN, which the
  # provider builds to read its tags, needs it.
  max_retries = local.emulator ? 2 : null
  endpoints {
    applicationautoscaling = var.endpoint
    athena                 = var.endpoint
    cloudwatch             = var.endpoint
    ec2                    = var.endpoint
    ecs                    = var.endpoint
    glue                   = var.endpoint
    iam                    = var.endpoint
    kms                    = var.endpoint
    logs                   = var.endpoint
    s3                     = var.endpoint
    sns                    = var.endpoint
    sqs                    = var.endpoint
    ssm                    = var.endpoint
    sts                    = var.endpoint
  }
}

provider "aws" {
  alias  = "security_second"
  region = var.second_region
  assume_role {
    role_arn = format(local.role, var.security_account_id)
  }
  access_key                  = local.emulator ? "test" : null
  secret_key                  = local.emulator ? "test" : null
  s3_use_path_style           = local.emulator
  skip_credentials_validation = local.emulator
  skip_metadata_api_check     = local.emulator
  skip_region_validation      = local.emulator
  skip_requesting_account_id  = local.emulator
  max_retries                 = local.emulator ? 2 : null
  endpoints {
    iam = var.endpoint
    sqs = var.endpoint
    sts = var.endpoint
  }
}

provider "aws" {
  alias  = "member_a"
  region = var.home_region
  assume_role {
    role_arn = format(local.role, var.member_a.account_id)
  }
  access_key                  = local.emulator ? "test" : null
  secret_key                  = local.emulator ? "test" : null
  s3_use_path_style           = local.emulator
  skip_credentials_validation = local.emulator
  skip_metadata_api_check     = local.emulator
  skip_region_validation      = local.emulator
  skip_requesting_account_id  = local.emulator
  max_retries                 = local.emulator ? 2 : null
  endpoints {
    iam = var.endpoint
    s3  = var.endpoint
    sts = var.endpoint
  }
}

provider "aws" {
  alias  = "member_a_second"
  region = var.second_region
  assume_role {
    role_arn = format(local.role, var.member_a.account_id)
  }
  access_key                  = local.emulator ? "test" : null
  secret_key                  = local.emulator ? "test" : null
  s3_use_path_style           = local.emulator
  skip_credentials_validation = local.emulator
  skip_metadata_api_check     = local.emulator
  skip_region_validation      = local.emulator
  skip_requesting_account_id  = local.emulator
  max_retries                 = local.emulator ? 2 : null
  endpoints {
    s3  = var.endpoint
    sts = var.endpoint
  }
}

provider "aws" {
  alias  = "member_b"
  region = var.home_region
  assume_role {
    role_arn = format(local.role, var.member_b.account_id)
  }
  access_key                  = local.emulator ? "test" : null
  secret_key                  = local.emulator ? "test" : null
  s3_use_path_style           = local.emulator
  skip_credentials_validation = local.emulator
  skip_metadata_api_check     = local.emulator
  skip_region_validation      = local.emulator
  skip_requesting_account_id  = local.emulator
  max_retries                 = local.emulator ? 2 : null
  endpoints {
    iam = var.endpoint
    s3  = var.endpoint
    sts = var.endpoint
  }
}

provider "aws" {
  alias  = "member_b_second"
  region = var.second_region
  assume_role {
    role_arn = format(local.role, var.member_b.account_id)
  }
  access_key                  = local.emulator ? "test" : null
  secret_key                  = local.emulator ? "test" : null
  s3_use_path_style           = local.emulator
  skip_credentials_validation = local.emulator
  skip_metadata_api_check     = local.emulator
  skip_region_validation      = local.emulator
  skip_requesting_account_id  = local.emulator
  max_retries                 = local.emulator ? 2 : null
  endpoints {
    s3  = var.endpoint
    sts = var.endpoint
  }
}
