//! The built-in `cis` rule set: the CIS AWS Foundations Benchmark's monitoring section
//! (v3.0.0, 4.1 to 4.15), as CloudWatch Logs metric filter patterns.
//!
//! Where each pattern text was taken from (the CIS PDF itself is licensed and not quoted here):
//!
//! - 4.2 to 4.14: AWS Security Hub's CloudWatch.1 to CloudWatch.14 controls, which run "the
//!   exact audit steps prescribed" by CIS ("This control fails if the exact metric filters
//!   prescribed by CIS are not used"), copied verbatim from AWS's own archived Security Hub
//!   guide (awsdocs/aws-security-hub-user-guide, doc_source/cloudwatch-controls.md, March 2023;
//!   today <https://docs.aws.amazon.com/securityhub/latest/userguide/cloudwatch-controls.html>).
//!   Security Hub maps them to CIS v1.4.0 4.3 to 4.14 and v1.2.0 3.1 to 3.14; v3.0.0 keeps the
//!   same controls under the same numbers. For 4.4 and 4.13 the current Security Hub page adds
//!   an `eventSource` clause ("Our recommended filter pattern ... differs from the filter
//!   pattern in the CIS guidance"); the set keeps CIS's text.
//! - 4.1 (unauthorized API calls): the v1.4.0-and-later text, which adds two exclusions to
//!   Security Hub's CloudWatch.2, as reproduced by Datadog's rule for the control
//!   (<https://docs.datadoghq.com/security/default_rules/aws-iam-account-unauthorized-api-calls-should-be-monitored>).
//!   With CloudWatch's precedence (`&&` before `||`) it reads `A || (B && C && D)`: the
//!   exclusions only apply to `AccessDenied*`. That is how CloudWatch evaluates it, so it is
//!   evaluated so here too.
//! - 4.15 (AWS Organizations changes): Security Hub has no control for it; the text is CIS's
//!   as reproduced by Fugue's rule FG_R00356 (<https://docs.fugue.co/FG_R00356.html>), the same
//!   string Lacework and Datadog carry.

use super::pattern::Pattern;

/// How urgent an alert is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A built-in rule.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The rule's name in configuration and alerts.
    pub name: &'static str,
    /// `CIS 4.3`, and Security Hub's control where there is one.
    pub control: &'static str,
    pub severity: Severity,
    pub description: &'static str,
    pub pattern: &'static str,
}

pub const CIS: [Builtin; 15] = [
    Builtin {
        name: "unauthorized-api-calls",
        control: "CIS 4.1 (Security Hub CloudWatch.2)",
        severity: Severity::Medium,
        description: "API calls refused as unauthorized or access denied",
        pattern: r#"{ ($.errorCode ="*UnauthorizedOperation") || ($.errorCode ="AccessDenied*") && ($.sourceIPAddress!="delivery.logs.amazonaws.com") && ($.eventName!="HeadBucket") }"#,
    },
    Builtin {
        name: "console-signin-without-mfa",
        control: "CIS 4.2 (Security Hub CloudWatch.3)",
        severity: Severity::High,
        description: "An IAM user signed in to the console without MFA",
        pattern: r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
    },
    Builtin {
        name: "root-account-usage",
        control: "CIS 4.3 (Security Hub CloudWatch.1)",
        severity: Severity::Critical,
        description: "The root user did something",
        pattern: r#"{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType !="AwsServiceEvent"}"#,
    },
    Builtin {
        name: "iam-policy-changes",
        control: "CIS 4.4 (Security Hub CloudWatch.4)",
        severity: Severity::Medium,
        description: "An IAM policy was created, changed, attached, detached or deleted",
        pattern: r#"{($.eventName=DeleteGroupPolicy) || ($.eventName=DeleteRolePolicy) || ($.eventName=DeleteUserPolicy) || ($.eventName=PutGroupPolicy) || ($.eventName=PutRolePolicy) || ($.eventName=PutUserPolicy) || ($.eventName=CreatePolicy) || ($.eventName=DeletePolicy) || ($.eventName=CreatePolicyVersion) || ($.eventName=DeletePolicyVersion) || ($.eventName=AttachRolePolicy) || ($.eventName=DetachRolePolicy) || ($.eventName=AttachUserPolicy) || ($.eventName=DetachUserPolicy) || ($.eventName=AttachGroupPolicy) || ($.eventName=DetachGroupPolicy)}"#,
    },
    Builtin {
        name: "cloudtrail-configuration-changes",
        control: "CIS 4.5 (Security Hub CloudWatch.5)",
        severity: Severity::High,
        description: "A trail was created, changed, deleted, started or stopped",
        pattern: r#"{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) || ($.eventName=StartLogging) || ($.eventName=StopLogging)}"#,
    },
    Builtin {
        name: "console-authentication-failures",
        control: "CIS 4.6 (Security Hub CloudWatch.6)",
        severity: Severity::Medium,
        description: "A console sign-in failed",
        pattern: r#"{($.eventName=ConsoleLogin) && ($.errorMessage="Failed authentication")}"#,
    },
    Builtin {
        name: "kms-key-disabled-or-deleted",
        control: "CIS 4.7 (Security Hub CloudWatch.7)",
        severity: Severity::High,
        description: "A customer managed KMS key was disabled or scheduled for deletion",
        pattern: r#"{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || ($.eventName=ScheduleKeyDeletion))}"#,
    },
    Builtin {
        name: "s3-bucket-policy-changes",
        control: "CIS 4.8 (Security Hub CloudWatch.8)",
        severity: Severity::Medium,
        description: "An S3 bucket's policy, ACL, CORS, lifecycle or replication changed",
        pattern: r#"{($.eventSource=s3.amazonaws.com) && (($.eventName=PutBucketAcl) || ($.eventName=PutBucketPolicy) || ($.eventName=PutBucketCors) || ($.eventName=PutBucketLifecycle) || ($.eventName=PutBucketReplication) || ($.eventName=DeleteBucketPolicy) || ($.eventName=DeleteBucketCors) || ($.eventName=DeleteBucketLifecycle) || ($.eventName=DeleteBucketReplication))}"#,
    },
    Builtin {
        name: "config-changes",
        control: "CIS 4.9 (Security Hub CloudWatch.9)",
        severity: Severity::High,
        description: "AWS Config recording or delivery was stopped or changed",
        pattern: r#"{($.eventSource=config.amazonaws.com) && (($.eventName=StopConfigurationRecorder) || ($.eventName=DeleteDeliveryChannel) || ($.eventName=PutDeliveryChannel) || ($.eventName=PutConfigurationRecorder))}"#,
    },
    Builtin {
        name: "security-group-changes",
        control: "CIS 4.10 (Security Hub CloudWatch.10)",
        severity: Severity::Medium,
        description: "A security group or its rules changed",
        pattern: r#"{($.eventName=AuthorizeSecurityGroupIngress) || ($.eventName=AuthorizeSecurityGroupEgress) || ($.eventName=RevokeSecurityGroupIngress) || ($.eventName=RevokeSecurityGroupEgress) || ($.eventName=CreateSecurityGroup) || ($.eventName=DeleteSecurityGroup)}"#,
    },
    Builtin {
        name: "nacl-changes",
        control: "CIS 4.11 (Security Hub CloudWatch.11)",
        severity: Severity::Medium,
        description: "A network ACL or its entries changed",
        pattern: r#"{($.eventName=CreateNetworkAcl) || ($.eventName=CreateNetworkAclEntry) || ($.eventName=DeleteNetworkAcl) || ($.eventName=DeleteNetworkAclEntry) || ($.eventName=ReplaceNetworkAclEntry) || ($.eventName=ReplaceNetworkAclAssociation)}"#,
    },
    Builtin {
        name: "network-gateway-changes",
        control: "CIS 4.12 (Security Hub CloudWatch.12)",
        severity: Severity::Medium,
        description: "A customer or internet gateway changed",
        pattern: r#"{($.eventName=CreateCustomerGateway) || ($.eventName=DeleteCustomerGateway) || ($.eventName=AttachInternetGateway) || ($.eventName=CreateInternetGateway) || ($.eventName=DeleteInternetGateway) || ($.eventName=DetachInternetGateway)}"#,
    },
    Builtin {
        name: "route-table-changes",
        control: "CIS 4.13 (Security Hub CloudWatch.13)",
        severity: Severity::Medium,
        description: "A route table or route changed",
        pattern: r#"{($.eventName=CreateRoute) || ($.eventName=CreateRouteTable) || ($.eventName=ReplaceRoute) || ($.eventName=ReplaceRouteTableAssociation) || ($.eventName=DeleteRouteTable) || ($.eventName=DeleteRoute) || ($.eventName=DisassociateRouteTable)}"#,
    },
    Builtin {
        name: "vpc-changes",
        control: "CIS 4.14 (Security Hub CloudWatch.14)",
        severity: Severity::Medium,
        description: "A VPC, its peering or ClassicLink changed",
        pattern: r#"{($.eventName=CreateVpc) || ($.eventName=DeleteVpc) || ($.eventName=ModifyVpcAttribute) || ($.eventName=AcceptVpcPeeringConnection) || ($.eventName=CreateVpcPeeringConnection) || ($.eventName=DeleteVpcPeeringConnection) || ($.eventName=RejectVpcPeeringConnection) || ($.eventName=AttachClassicLinkVpc) || ($.eventName=DetachClassicLinkVpc) || ($.eventName=DisableVpcClassicLink) || ($.eventName=EnableVpcClassicLink)}"#,
    },
    Builtin {
        name: "organizations-changes",
        control: "CIS 4.15",
        severity: Severity::High,
        description: "The organization's structure, accounts or policies changed",
        pattern: r#"{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }"#,
    },
];

/// The rule set's patterns, parsed.
pub fn rules() -> Vec<(Builtin, Pattern)> {
    CIS.iter()
        .map(|b| {
            let p = Pattern::parse(b.pattern)
                .unwrap_or_else(|e| panic!("built-in rule {}: {}", b.name, e.pointed(b.pattern)));
            (*b, p)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn fires(name: &str, record: &Value) -> bool {
        let (_, p) = rules()
            .into_iter()
            .find(|(b, _)| b.name == name)
            .unwrap_or_else(|| panic!("no rule {name}"));
        p.matches(record)
    }

    /// `base` with `path` (dot-separated) set to `value`, or removed when `value` is `None`.
    fn with(base: &Value, path: &str, value: Option<Value>) -> Value {
        let mut v = base.clone();
        let mut at = &mut v;
        let parts: Vec<&str> = path.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            at = at.as_object_mut().unwrap().entry(*p).or_insert(json!({}));
        }
        let map = at.as_object_mut().unwrap();
        match value {
            Some(x) => map.insert(parts[parts.len() - 1].to_owned(), x),
            None => map.remove(parts[parts.len() - 1]),
        };
        v
    }

    /// Each rule fires on `record`, and stays silent when any one clause is made false.
    fn rule(name: &str, record: Value, near_misses: &[(&str, Option<Value>)]) {
        assert!(fires(name, &record), "{name} on {record}");
        for (path, value) in near_misses {
            let miss = with(&record, path, value.clone());
            assert!(!fires(name, &miss), "{name} fired on the near miss {miss}");
        }
    }

    #[test]
    fn every_rule_parses_and_the_set_is_cis_4_1_to_4_15() {
        let controls: Vec<String> = rules()
            .iter()
            .map(|(b, _)| b.control.split(' ').nth(1).unwrap().to_owned())
            .collect();
        let expected: Vec<String> = (1..=15).map(|n| format!("4.{n}")).collect();
        assert_eq!(controls, expected);
    }

    #[test]
    fn unauthorized_api_calls() {
        let r = json!({"errorCode": "Client.UnauthorizedOperation", "eventName": "RunInstances"});
        rule(
            "unauthorized-api-calls",
            r.clone(),
            &[
                ("errorCode", Some(json!("UnauthorizedOperationX"))),
                ("errorCode", None),
                ("errorCode", Some(json!(["Client.UnauthorizedOperation"]))),
            ],
        );
        let denied = json!({"errorCode": "AccessDenied", "eventName": "GetObject",
                            "sourceIPAddress": "203.0.113.5"});
        rule(
            "unauthorized-api-calls",
            denied.clone(),
            &[
                ("errorCode", Some(json!("NotAccessDenied"))),
                ("errorCode", Some(json!("accessdenied"))),
                (
                    "sourceIPAddress",
                    Some(json!("delivery.logs.amazonaws.com")),
                ),
                ("eventName", Some(json!("HeadBucket"))),
                // `!=` on a missing field does not match (as in CloudWatch).
                ("sourceIPAddress", None),
            ],
        );
        assert!(fires(
            "unauthorized-api-calls",
            &with(&denied, "errorCode", Some(json!("AccessDeniedException")))
        ));
        // A || (B && C && D): the exclusions do not apply to UnauthorizedOperation.
        assert!(fires(
            "unauthorized-api-calls",
            &with(&r, "eventName", Some(json!("HeadBucket")))
        ));
    }

    #[test]
    fn console_signin_without_mfa() {
        rule(
            "console-signin-without-mfa",
            json!({"eventName": "ConsoleLogin", "userIdentity": {"type": "IAMUser"},
                   "responseElements": {"ConsoleLogin": "Success"},
                   "additionalEventData": {"MFAUsed": "No"}}),
            &[
                ("eventName", Some(json!("CheckMfa"))),
                ("additionalEventData.MFAUsed", Some(json!("Yes"))),
                ("additionalEventData", None),
                ("userIdentity.type", Some(json!("AssumedRole"))),
                ("responseElements.ConsoleLogin", Some(json!("Failure"))),
            ],
        );
    }

    #[test]
    fn root_account_usage() {
        rule(
            "root-account-usage",
            json!({"userIdentity": {"type": "Root"}, "eventType": "AwsConsoleSignIn"}),
            &[
                ("userIdentity.type", Some(json!("root"))),
                ("userIdentity.type", Some(json!("IAMUser"))),
                (
                    "userIdentity.invokedBy",
                    Some(json!("support.amazonaws.com")),
                ),
                ("eventType", Some(json!("AwsServiceEvent"))),
                ("eventType", None),
            ],
        );
    }

    /// A rule of the form `(eventSource = S &&) (eventName = A || ...)`: each listed name fires;
    /// a name not listed, another source, and a missing source do not.
    fn by_event_name(name: &str, source: Option<&str>, listed: &[&str], unlisted: &[&str]) {
        for event in listed {
            let mut r = json!({"eventName": event});
            if let Some(s) = source {
                r = with(&r, "eventSource", Some(json!(s)));
            }
            let mut misses = vec![("eventName", Some(json!(format!("{event}X"))))];
            if source.is_some() {
                misses.push(("eventSource", Some(json!("ec2.amazonaws.com"))));
                misses.push(("eventSource", None));
            }
            for u in unlisted {
                misses.push(("eventName", Some(json!(u))));
            }
            rule(name, r, &misses);
        }
    }

    #[test]
    fn event_name_rules() {
        by_event_name(
            "iam-policy-changes",
            None,
            &[
                "DeleteGroupPolicy",
                "DeleteRolePolicy",
                "DeleteUserPolicy",
                "PutGroupPolicy",
                "PutRolePolicy",
                "PutUserPolicy",
                "CreatePolicy",
                "DeletePolicy",
                "CreatePolicyVersion",
                "DeletePolicyVersion",
                "AttachRolePolicy",
                "DetachRolePolicy",
                "AttachUserPolicy",
                "DetachUserPolicy",
                "AttachGroupPolicy",
                "DetachGroupPolicy",
            ],
            &[
                "SetDefaultPolicyVersion",
                "PutRolePermissionsBoundary",
                "putrolepolicy",
            ],
        );
        by_event_name(
            "cloudtrail-configuration-changes",
            None,
            &[
                "CreateTrail",
                "UpdateTrail",
                "DeleteTrail",
                "StartLogging",
                "StopLogging",
            ],
            &["GetTrail", "PutEventSelectors"],
        );
        by_event_name(
            "kms-key-disabled-or-deleted",
            Some("kms.amazonaws.com"),
            &["DisableKey", "ScheduleKeyDeletion"],
            &["DisableKeyRotation", "CancelKeyDeletion"],
        );
        by_event_name(
            "s3-bucket-policy-changes",
            Some("s3.amazonaws.com"),
            &[
                "PutBucketAcl",
                "PutBucketPolicy",
                "PutBucketCors",
                "PutBucketLifecycle",
                "PutBucketReplication",
                "DeleteBucketPolicy",
                "DeleteBucketCors",
                "DeleteBucketLifecycle",
                "DeleteBucketReplication",
            ],
            &["PutBucketTagging", "PutBucketPublicAccessBlock"],
        );
        by_event_name(
            "config-changes",
            Some("config.amazonaws.com"),
            &[
                "StopConfigurationRecorder",
                "DeleteDeliveryChannel",
                "PutDeliveryChannel",
                "PutConfigurationRecorder",
            ],
            &["StartConfigurationRecorder"],
        );
        by_event_name(
            "security-group-changes",
            None,
            &[
                "AuthorizeSecurityGroupIngress",
                "AuthorizeSecurityGroupEgress",
                "RevokeSecurityGroupIngress",
                "RevokeSecurityGroupEgress",
                "CreateSecurityGroup",
                "DeleteSecurityGroup",
            ],
            &["ModifySecurityGroupRules"],
        );
        by_event_name(
            "nacl-changes",
            None,
            &[
                "CreateNetworkAcl",
                "CreateNetworkAclEntry",
                "DeleteNetworkAcl",
                "DeleteNetworkAclEntry",
                "ReplaceNetworkAclEntry",
                "ReplaceNetworkAclAssociation",
            ],
            &["DescribeNetworkAcls"],
        );
        by_event_name(
            "network-gateway-changes",
            None,
            &[
                "CreateCustomerGateway",
                "DeleteCustomerGateway",
                "AttachInternetGateway",
                "CreateInternetGateway",
                "DeleteInternetGateway",
                "DetachInternetGateway",
            ],
            &["CreateNatGateway", "CreateTransitGateway"],
        );
        by_event_name(
            "route-table-changes",
            None,
            &[
                "CreateRoute",
                "CreateRouteTable",
                "ReplaceRoute",
                "ReplaceRouteTableAssociation",
                "DeleteRouteTable",
                "DeleteRoute",
                "DisassociateRouteTable",
            ],
            &["AssociateRouteTable"],
        );
        by_event_name(
            "vpc-changes",
            None,
            &[
                "CreateVpc",
                "DeleteVpc",
                "ModifyVpcAttribute",
                "AcceptVpcPeeringConnection",
                "CreateVpcPeeringConnection",
                "DeleteVpcPeeringConnection",
                "RejectVpcPeeringConnection",
                "AttachClassicLinkVpc",
                "DetachClassicLinkVpc",
                "DisableVpcClassicLink",
                "EnableVpcClassicLink",
            ],
            &["CreateSubnet", "ModifyVpcEndpoint"],
        );
        by_event_name(
            "organizations-changes",
            Some("organizations.amazonaws.com"),
            &[
                "AcceptHandshake",
                "AttachPolicy",
                "CreateAccount",
                "CreateOrganizationalUnit",
                "CreatePolicy",
                "DeclineHandshake",
                "DeleteOrganization",
                "DeleteOrganizationalUnit",
                "DeletePolicy",
                "DetachPolicy",
                "DisablePolicyType",
                "EnablePolicyType",
                "InviteAccountToOrganization",
                "LeaveOrganization",
                "MoveAccount",
                "RemoveAccountFromOrganization",
                "UpdatePolicy",
                "UpdateOrganizationalUnit",
            ],
            &["DescribeOrganization", "ListAccounts"],
        );
    }

    #[test]
    fn console_authentication_failures() {
        rule(
            "console-authentication-failures",
            json!({"eventName": "ConsoleLogin", "errorMessage": "Failed authentication"}),
            &[
                ("eventName", Some(json!("CheckMfa"))),
                ("errorMessage", Some(json!("Failed authentication."))),
                ("errorMessage", None),
            ],
        );
    }
}
