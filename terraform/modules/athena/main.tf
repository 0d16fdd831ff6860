# Athena over trailvault's archive: a Glue database with one table per trail location (its
# partition projection maps account, region and delivery date onto the archive keys the
# worker writes), views named cloudtrail and insights over them, a workgroup whose results
# are encrypted and bounded, and the auditor's permissions for exactly these.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account        = data.aws_caller_identity.current.account_id
  partition      = data.aws_partition.current.partition
  region         = data.aws_region.current.name
  root           = "arn:${local.partition}:iam::${local.account}:root"
  archive_arn    = "arn:${local.partition}:s3:::${var.archive_bucket}"
  results_bucket = coalesce(var.results_bucket_name, "${var.archive_bucket}-athena-results")
  results_key    = var.results_kms_key_arn != null ? var.results_kms_key_arn : aws_kms_key.results[0].arn

  # The columns of AWS's own Athena table for CloudTrail (Athena User Guide, "Create the table
  # for CloudTrail logs in Athena using partition projection"), names and Hive types as AWS
  # gives them; Insights records as CloudTrail documents them (AWS gives no Athena table).
  columns = {
    cloudtrail = jsondecode(file("${path.module}/cloudtrail-columns.json"))
    insights   = jsondecode(file("${path.module}/insights-columns.json"))
  }
  # Where each kind of file lies under AWSLogs/[o-ID/]ACCOUNT/ (CloudTrail's layout, kept in
  # the archive key after {key_prefix}{source bucket}/).
  folders        = { cloudtrail = "CloudTrail", insights = "CloudTrail-Insight" }
  partition_keys = ["account", "region", "date"]

  # One table per trail location and kind. The archive key of a log file is
  #   {key_prefix}{bucket}/{prefix}AWSLogs/[o-ID/]{account}/CloudTrail/{region}/{yyyy/MM/dd}/{file}
  # so the template below, with a file's account, region and date, is exactly its folder.
  tables = merge([
    for kind, folder in local.folders : {
      for t in var.trails : "${kind}_${t.name}" => {
        kind = kind
        base = "s3://${var.archive_bucket}/${var.key_prefix}${t.bucket}/${t.prefix}AWSLogs/${t.organization_id == null ? "" : "${t.organization_id}/"}"
        # Athena's placeholders, not Terraform's: $${x} is a literal ${x}.
        folder   = "${folder}/$${region}/$${date}/"
        accounts = t.accounts
      }
    }
  ]...)

  # Athena keeps a view in Glue as Presto's view definition: its SQL and its columns in
  # Presto's types (Hive's, rewritten: string -> varchar, struct<a:t> -> row(a t), ...).
  presto_type = { for kind, cols in local.columns : kind => [
    for c in cols : {
      name = c.name
      type = replace(replace(replace(replace(replace(replace(c.type,
        "/\\bstring\\b/", "varchar"),
        "struct<", "row("),
        "array<", "array("),
        "map<", "map("),
        ">", ")"),
      ":", " ")
    }
  ] }
  view_sql = { for kind in keys(local.folders) : kind => join("\nUNION ALL\n", [
    for t in var.trails : format("SELECT %s, account, region, \"date\" FROM \"%s\".\"%s\"",
      join(", ", [for c in local.columns[kind] : c.name]),
      var.database_name,
    "${kind}_${t.name}")
  ]) }
}

# ---------------------------------------------------------------------------------------------
# The catalog.

resource "aws_glue_catalog_database" "this" {
  name        = var.database_name
  description = "trailvault's archive of CloudTrail logs, for Athena: views cloudtrail and insights"
  tags        = var.tags
}

resource "aws_glue_catalog_table" "files" {
  for_each = local.tables

  name          = each.key
  database_name = aws_glue_catalog_database.this.name
  description   = "CloudTrail ${each.value.kind == "insights" ? "Insights " : ""}records archived from ${each.value.base}"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL       = "TRUE"
    classification = "cloudtrail"
    # Athena skips objects in Glacier Flexible Retrieval and Deep Archive; with this it reads
    # those that have been restored (docs/auditor-guide.md, "Searching the archive").
    read_restored_glacier_objects = "true"

    "projection.enabled"            = "true"
    "projection.account.type"       = "enum"
    "projection.account.values"     = join(",", each.value.accounts)
    "projection.region.type"        = "enum"
    "projection.region.values"      = join(",", var.regions)
    "projection.date.type"          = "date"
    "projection.date.format"        = "yyyy/MM/dd"
    "projection.date.range"         = "${var.first_day},NOW"
    "projection.date.interval"      = "1"
    "projection.date.interval.unit" = "DAYS"
    "storage.location.template"     = "${each.value.base}$${account}/${each.value.folder}"
  }

  dynamic "partition_keys" {
    for_each = local.partition_keys
    content {
      name = partition_keys.value
      type = "string"
    }
  }

  storage_descriptor {
    location      = each.value.base
    input_format  = "com.amazon.emr.cloudtrail.CloudTrailInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hive.hcatalog.data.JsonSerDe"
    }

    dynamic "columns" {
      for_each = local.columns[each.value.kind]
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

# The views every named query (queries/) reads: every trail location's table, same columns.
resource "aws_glue_catalog_table" "view" {
  for_each = local.folders

  name          = each.key
  database_name = aws_glue_catalog_database.this.name
  description   = "Every archived CloudTrail ${each.key == "insights" ? "Insights " : ""}record: the union of the ${each.key}_* tables"
  table_type    = "VIRTUAL_VIEW"

  parameters = {
    presto_view = "true"
    comment     = "Presto View"
  }

  view_expanded_text = "/* Presto View */"
  view_original_text = "/* Presto View: ${base64encode(jsonencode({
    originalSql = local.view_sql[each.key]
    catalog     = "awsdatacatalog"
    schema      = var.database_name
    columns = concat(local.presto_type[each.key], [
      for k in local.partition_keys : { name = k, type = "varchar" }
    ])
  }))} */"

  storage_descriptor {
    dynamic "columns" {
      for_each = concat(local.columns[each.key], [for k in local.partition_keys : { name = k, type = "string" }])
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }

  depends_on = [aws_glue_catalog_table.files]
}

# ---------------------------------------------------------------------------------------------
# Query results: a bucket of their own, encrypted, private, expiring.

data "aws_iam_policy_document" "results_key" {
  # checkov:skip=CKV_AWS_109:A key policy's Resource "*" is the key itself; the account administers it
  # checkov:skip=CKV_AWS_111:A key policy's Resource "*" is the key itself; the account administers it
  # checkov:skip=CKV_AWS_356:A key policy's Resource "*" is the key itself
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.root]
    }
  }
}

resource "aws_kms_key" "results" {
  count                   = var.results_kms_key_arn == null ? 1 : 0
  description             = "trailvault: Athena query results over the archive (SSE-KMS)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.results_key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "results" {
  count         = length(aws_kms_key.results)
  name          = "alias/${var.name}-athena-results"
  target_key_id = aws_kms_key.results[0].key_id
}

resource "aws_s3_bucket" "results" {
  # checkov:skip=CKV_AWS_144:Query results are disposable copies of archived records; the archive is what is kept
  # checkov:skip=CKV2_AWS_62:Nothing consumes query results' events
  # checkov:skip=CKV_AWS_18:Reads of results are the auditor's own; Athena's query history names who ran what
  bucket        = local.results_bucket
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_versioning" "results" {
  bucket = aws_s3_bucket.results.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "results" {
  bucket = aws_s3_bucket.results.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = local.results_key
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "results" {
  bucket                  = aws_s3_bucket.results.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "results" {
  bucket = aws_s3_bucket.results.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "results" {
  bucket = aws_s3_bucket.results.id
  rule {
    id     = "expire-query-results"
    status = "Enabled"
    filter {}
    expiration {
      days = var.results_expiration_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  depends_on = [aws_s3_bucket_versioning.results]
}

data "aws_iam_policy_document" "results_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.results.arn, "${aws_s3_bucket.results.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "results" {
  count      = var.enforce_tls ? 1 : 0
  bucket     = aws_s3_bucket.results.id
  policy     = data.aws_iam_policy_document.results_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.results]
}

# ---------------------------------------------------------------------------------------------
# The workgroup: its settings override the client's, results encrypted, queries bounded.

resource "aws_athena_workgroup" "this" {
  name          = var.name
  description   = "trailvault: auditors' queries over the CloudTrail archive"
  force_destroy = var.force_destroy
  # Never untagged: the local emulator answers ListTagsForResource of a workgroup without tags
  # with "does not exist", which fails the apply.
  tags = merge({ purpose = "trailvault-audit-queries" }, var.tags)

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff_per_query

    engine_version {
      # Version 3 reads restored Glacier objects (read_restored_glacier_objects).
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location       = "s3://${aws_s3_bucket.results.id}/results/"
      expected_bucket_owner = local.account

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = local.results_key
      }
    }
  }
}

# ---------------------------------------------------------------------------------------------
# The auditor's permissions: queries in this workgroup only, this database's metadata, reads
# of the archive, the results location, and the two keys.

data "aws_iam_policy_document" "auditor" {
  statement {
    sid = "QueryInTheWorkgroup"
    actions = [
      "athena:StartQueryExecution", "athena:StopQueryExecution", "athena:GetQueryExecution",
      "athena:GetQueryResults", "athena:GetQueryResultsStream", "athena:GetQueryRuntimeStatistics",
      "athena:BatchGetQueryExecution", "athena:ListQueryExecutions", "athena:GetWorkGroup",
      "athena:CreatePreparedStatement", "athena:GetPreparedStatement", "athena:UpdatePreparedStatement",
      "athena:DeletePreparedStatement", "athena:ListPreparedStatements",
      "athena:GetNamedQuery", "athena:BatchGetNamedQuery", "athena:ListNamedQueries",
    ]
    resources = [aws_athena_workgroup.this.arn]
  }

  statement {
    sid = "Catalog"
    actions = [
      "athena:GetDataCatalog", "athena:GetDatabase", "athena:ListDatabases",
      "athena:GetTableMetadata", "athena:ListTableMetadata",
    ]
    resources = ["arn:${local.partition}:athena:${local.region}:${local.account}:datacatalog/AwsDataCatalog"]
  }

  statement {
    sid     = "TableDefinitions"
    actions = ["glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables", "glue:GetPartition", "glue:GetPartitions"]
    resources = [
      "arn:${local.partition}:glue:${local.region}:${local.account}:catalog",
      "arn:${local.partition}:glue:${local.region}:${local.account}:database/${aws_glue_catalog_database.this.name}",
      "arn:${local.partition}:glue:${local.region}:${local.account}:table/${aws_glue_catalog_database.this.name}/*",
    ]
  }

  statement {
    sid       = "ListArchive"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.archive_arn]
  }

  statement {
    sid       = "ReadArchive"
    actions   = ["s3:GetObject"]
    resources = ["${local.archive_arn}/*"]
  }

  statement {
    sid       = "ResultsBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.results.arn]
  }

  statement {
    sid       = "Results"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${aws_s3_bucket.results.arn}/*"]
  }

  statement {
    sid       = "DecryptArchive"
    actions   = ["kms:Decrypt"]
    resources = [var.archive_kms_key_arn]
  }

  statement {
    sid       = "ResultsKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [local.results_key]
  }
}

resource "aws_iam_role_policy" "auditor" {
  count  = var.auditor_role_name == null ? 0 : 1
  name   = "${var.name}-athena"
  role   = var.auditor_role_name
  policy = data.aws_iam_policy_document.auditor.json
}
