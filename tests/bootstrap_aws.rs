//! Generated bootstraps on the AWS provider, against moto (see `tests/moto`): an EKS node group's
//! launch template carries a nodeadm `NodeConfig` made from `DescribeCluster`; a kubeadm node
//! group's carries a `JoinConfiguration`, observation reports the digest of its join secrets, and
//! `update_join` rotates them for the instances launched later without a new generation or
//! touching the running ones; the EKS token is a presigned STS URL for the cluster. What the
//! cloud holds is read back through boto3, not through the provider.

mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Once;

use drydock_aws::mapping::{self, TAG_JOIN};
use drydock_aws::{AwsConfig, AwsProvider, EksCluster};
use drydock_provider::{
    Bootstrap, CreateGroup, ErrorKind, GenerationSpec, GroupSettings, JoinSecrets, ObservedGroup, Ownership, Provider,
    Role,
};
use moto::{Moto, Network, REGION};
use serde_json::Value;

const LINEAGE: &str = "0f1e2d3c-aaaa-bbbb-cccc-00000000b007";

/// A provider on this moto server. Credentials come from the provider's own chain: the
/// environment, set once for the whole test binary (every test sets the same values).
fn provider(m: &Moto) -> AwsProvider {
    static ENV: Once = Once::new();
    ENV.call_once(|| {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent/drydock-test-aws-config"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/drydock-test-aws-credentials"),
        ] {
            std::env::set_var(k, v);
        }
        for k in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"] {
            std::env::remove_var(k);
        }
    });
    AwsProvider::new(AwsConfig { region: Some(REGION.into()), profile: None, endpoint: Some(m.endpoint.clone()) })
}

fn ownership(node_group: &str, generation: &str) -> Ownership {
    Ownership {
        lineage: LINEAGE.into(),
        cluster: "prod".into(),
        node_group: node_group.into(),
        generation: generation.into(),
    }
}

fn spec(net: &Network, bootstrap: Bootstrap) -> GenerationSpec {
    GenerationSpec {
        image: net.images[0].clone(),
        instance_types: vec!["m6i.large".into()],
        user_data: Some("#!/bin/bash\necho after the join\n".into()),
        labels: BTreeMap::from([("node.kubernetes.io/pool".into(), "general".into())]),
        taints: vec!["dedicated=batch:NoSchedule".into()],
        kubernetes_version: "1.31".into(),
        security_groups: vec![net.security_group.clone()],
        role: Role::Worker,
        bootstrap: Some(bootstrap),
        ..GenerationSpec::default()
    }
}

fn settings(net: &Network, desired: u32) -> GroupSettings {
    GroupSettings { min: 0, max: 4, desired, subnets: vec![net.subnets[0].clone()], ..GroupSettings::default() }
}

fn secrets(token: &str) -> JoinSecrets {
    JoinSecrets {
        token: token.into(),
        ca_cert_hashes: vec!["sha256:7c1e5a0f9d1b2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f".into()],
        certificate_key: None,
    }
}

/// The group as AWS holds it: its launch template (name, id) and that template's user data
/// (decoded), its tags, and its members with the template each was launched from and its tags.
fn group(m: &Moto, name: &str) -> Value {
    m.py(&format!(
        "g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[{name:?}])['AutoScalingGroups'][0]\n\
         lt = g['LaunchTemplate']\n\
         v = ec2.describe_launch_template_versions(LaunchTemplateId=lt['LaunchTemplateId'], Versions=[lt['Version']])['LaunchTemplateVersions'][0]\n\
         ids = [i['InstanceId'] for i in g['Instances']]\n\
         inst = [i for r in ec2.describe_instances(InstanceIds=ids)['Reservations'] for i in r['Instances']] if ids else []\n\
         out({{'template': lt, 'user_data': base64.b64decode(v['LaunchTemplateData']['UserData']).decode(),\n\
               'tags': {{t['Key']: t['Value'] for t in g['Tags']}},\n\
               'instances': {{i['InstanceId']: {{t['Key']: t['Value'] for t in i.get('Tags', [])}} for i in inst}}}})"
    ))
}

/// Every launch template of the node group (by its name prefix).
fn templates(m: &Moto, o: &Ownership) -> BTreeSet<String> {
    let prefix = mapping::template_prefix(o);
    let v = m.py(&format!(
        "ts = ec2.describe_launch_templates(Filters=[{{'Name': 'launch-template-name', 'Values': [{:?}]}}])['LaunchTemplates']\n\
         out([t['LaunchTemplateName'] for t in ts])",
        format!("{prefix}*")
    ));
    v.as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// The JSON document of the MIME part of `content_type` in composed user data.
fn part(user_data: &str, content_type: &str) -> Value {
    let (_, after) = user_data.split_once(&format!("Content-Type: {content_type}\n\n")).expect("the part");
    let (body, _) = after.split_once("\n--==drydock-7f3c9e1d==").expect("its end");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The kubeadm `JoinConfiguration` in composed user data.
fn join_configuration(user_data: &str) -> Value {
    let (_, after) =
        user_data.split_once("cat > /etc/drydock/kubeadm-join.yaml <<'DRYDOCK_EOF'\n").expect("a join file");
    let (body, _) = after.split_once("\nDRYDOCK_EOF\n").expect("its end");
    serde_json::from_str(body).unwrap()
}

async fn observed(p: &AwsProvider, name: &str) -> ObservedGroup {
    p.observe(LINEAGE).await.unwrap().group(name).cloned().unwrap_or_else(|| panic!("{name} is not observed"))
}

fn member_ids(g: &Value) -> BTreeSet<String> {
    g["instances"].as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn an_eks_group_joins_with_a_node_config_from_describe_cluster_and_gets_a_presigned_token() {
    let m = Moto::start();
    let net = m.network();
    let described = m.py(&format!(
        "eks.create_cluster(name='prod-eks', version='1.31', roleArn='arn:aws:iam::123456789012:role/eks',\n\
             resourcesVpcConfig={{'subnetIds': {:?}}}, kubernetesNetworkConfig={{'serviceIpv4Cidr': '10.100.0.0/16'}})\n\
         c = eks.describe_cluster(name='prod-eks')['cluster']\n\
         out({{'endpoint': c['endpoint'], 'ca': c['certificateAuthority']['data'],\n\
               'cidr': c['kubernetesNetworkConfig']['serviceIpv4Cidr'], 'version': c['version']}})",
        net.subnets
    ));
    let p = provider(&m);
    let cluster = p.eks_cluster("prod-eks").await.unwrap();
    assert_eq!(
        cluster,
        EksCluster {
            endpoint: text(&described, "endpoint").into(),
            certificate_authority: text(&described, "ca").into(),
            service_cidr: "10.100.0.0/16".into(),
            version: "1.31".into(),
        }
    );

    // Two node groups of the cluster: DescribeCluster is read once for both.
    let bootstrap = Bootstrap::Eks { cluster_name: "prod-eks".into() };
    for node_group in ["workers-a", "workers-b"] {
        let req = CreateGroup {
            name: format!("b007-prod-{node_group}-g1"),
            ownership: ownership(node_group, "g1"),
            spec: spec(&net, bootstrap.clone()),
            settings: settings(&net, 1),
            join: None,
        };
        let made = p.create_group(&req).await.unwrap();
        assert_eq!(made.join_digest, None);
    }
    assert_eq!(p.stats().get("DescribeCluster"), 1, "{:?}", p.stats());

    let g = group(&m, "b007-prod-workers-a-g1");
    let user_data = text(&g, "user_data");
    let config = part(user_data, "application/node.eks.aws");
    assert_eq!(config["apiVersion"], "node.eks.aws/v1alpha1");
    assert_eq!(config["kind"], "NodeConfig");
    assert_eq!(config["spec"]["cluster"]["name"], "prod-eks");
    assert_eq!(config["spec"]["cluster"]["apiServerEndpoint"], described["endpoint"]);
    assert_eq!(config["spec"]["cluster"]["certificateAuthority"], described["ca"]);
    assert_eq!(config["spec"]["cluster"]["cidr"], "10.100.0.0/16");
    assert_eq!(
        config["spec"]["kubelet"]["flags"],
        serde_json::json!([
            "--node-labels=node.kubernetes.io/pool=general",
            "--register-with-taints=dedicated=batch:NoSchedule"
        ])
    );
    // nodeadm's part first, then drydock's script, then the node group's own.
    let nodeadm = user_data.find("Content-Type: application/node.eks.aws").unwrap();
    let drydock = user_data.find("cat > /etc/drydock/node.json").unwrap();
    let own = user_data.find("echo after the join").unwrap();
    assert!(nodeadm < drydock && drydock < own, "{user_data}");
    assert!(!user_data.contains("kubeadm"), "{user_data}");
    assert!(!g["tags"].as_object().unwrap().contains_key(TAG_JOIN));

    // A cluster that does not exist is a mistake in the configuration, named.
    let missing = CreateGroup {
        name: "b007-prod-workers-c-g1".into(),
        ownership: ownership("workers-c", "g1"),
        spec: spec(&net, Bootstrap::Eks { cluster_name: "nope".into() }),
        settings: settings(&net, 1),
        join: None,
    };
    let err = p.create_group(&missing).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert!(err.message.contains("no EKS cluster named nope"), "{err}");

    // The token: `k8s-aws-v1.` and an unpadded base64url presigned STS URL, for this cluster.
    let (token, expires_ms) = p.eks_token_source("prod-eks").token().await.unwrap();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(expires_ms > now_ms + 13 * 60_000 && expires_ms <= now_ms + 14 * 60_000, "{expires_ms} vs {now_ms}");
    let checked = m.py(&format!(
        "import datetime, urllib.parse, botocore.auth\n\
         from botocore.awsrequest import AWSRequest\n\
         from botocore.credentials import Credentials\n\
         token = {token:?}\n\
         assert token.startswith('k8s-aws-v1.') and '=' not in token\n\
         b = token[len('k8s-aws-v1.'):]\n\
         url = base64.urlsafe_b64decode(b + '=' * (-len(b) % 4)).decode()\n\
         q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))\n\
         # botocore (the signer of `aws eks get-token`) signs the same request at the same time:\n\
         signed_at = datetime.datetime.strptime(q['X-Amz-Date'], '%Y%m%dT%H%M%SZ')\n\
         class At(datetime.datetime):\n\
         \x20   @classmethod\n\
         \x20   def utcnow(cls): return signed_at\n\
         \x20   @classmethod\n\
         \x20   def now(cls, tz=None): return signed_at.replace(tzinfo=tz)\n\
         botocore.auth.datetime.datetime = At\n\
         r = AWSRequest(method='GET', url='https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15', headers={{'x-k8s-aws-id': 'prod-eks'}})\n\
         botocore.auth.SigV4QueryAuth(Credentials('testing', 'testing'), 'sts', 'us-east-1', expires=60).add_auth(r)\n\
         out({{'url': url, 'query': q, 'botocore': r.url}})"
    ));
    let url = text(&checked, "url");
    assert!(
        url.starts_with("https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"),
        "{url}"
    );
    let q = &checked["query"];
    assert_eq!(q["X-Amz-Expires"], "60");
    assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
    let signed: Vec<&str> = text(q, "X-Amz-SignedHeaders").split(';').collect();
    assert!(signed.contains(&"x-k8s-aws-id") && signed.contains(&"host"), "{signed:?}");
    assert!(
        text(q, "X-Amz-Credential").starts_with("testing/")
            && text(q, "X-Amz-Credential").ends_with("/us-east-1/sts/aws4_request")
    );
    assert_eq!(url, text(&checked, "botocore"), "the same URL as botocore signs");
}

#[tokio::test]
async fn a_kubeadm_group_rotates_its_join_secrets_for_new_instances_only() {
    let m = Moto::start();
    let net = m.network();
    let p = provider(&m);
    let bootstrap = Bootstrap::Kubeadm { api_server_endpoint: "10.0.0.10:6443".into() };
    let o = ownership("workers", "3f2a9c01bd");
    let name = "b007-prod-workers-3f2a9c01bd";
    let spec = spec(&net, bootstrap.clone());
    let (one, two, three) =
        (secrets("abcdef.0123456789abcdef"), secrets("ghijkl.0123456789abcdef"), secrets("mnopqr.0123456789abcdef"));
    let req = CreateGroup {
        name: name.into(),
        ownership: o.clone(),
        spec: spec.clone(),
        settings: settings(&net, 2),
        join: Some(one.clone()),
    };
    assert_eq!(p.create_group(&req).await.unwrap().join_digest, Some(one.digest()));

    // The template holds the JoinConfiguration; the group's tag and observation name its digest.
    let first = group(&m, name);
    let config = join_configuration(text(&first, "user_data"));
    assert_eq!(config["kind"], "JoinConfiguration");
    assert_eq!(config["apiVersion"], "kubeadm.k8s.io/v1beta4");
    assert_eq!(config["discovery"]["bootstrapToken"]["token"], "abcdef.0123456789abcdef");
    assert_eq!(config["discovery"]["bootstrapToken"]["apiServerEndpoint"], "10.0.0.10:6443");
    assert_eq!(config["nodeRegistration"]["taints"][0]["effect"], "NoSchedule");
    assert_eq!(text(&first["template"], "LaunchTemplateName"), mapping::template_name_for(&o, Some(&one.digest())));
    assert_eq!(first["tags"][TAG_JOIN], one.digest().as_str());
    let seen = observed(&p, name).await;
    assert_eq!(seen.join_digest, Some(one.digest()));
    assert!(seen.spec_partial, "its own template: not read");
    let running = member_ids(&first);
    assert_eq!(running.len(), 2);
    for tags in first["instances"].as_object().unwrap().values() {
        assert_eq!(tags[TAG_JOIN], one.digest().as_str());
    }

    // Rotate: a template beside the generation's, the group pointed at it, the old one gone.
    p.update_join(name, &o, &spec, &two).await.unwrap();
    let rotated = group(&m, name);
    let config = join_configuration(text(&rotated, "user_data"));
    assert_eq!(config["discovery"]["bootstrapToken"]["token"], "ghijkl.0123456789abcdef");
    assert!(!text(&rotated, "user_data").contains("abcdef.0123456789abcdef"));
    assert_eq!(text(&rotated["template"], "LaunchTemplateName"), mapping::template_name_for(&o, Some(&two.digest())));
    assert_eq!(templates(&m, &o), BTreeSet::from([mapping::template_name_for(&o, Some(&two.digest()))]));
    let seen = observed(&p, name).await;
    assert_eq!(seen.join_digest, Some(two.digest()));
    assert_eq!(seen.name, name, "the same group");
    assert_eq!(seen.ownership, o, "the same generation");
    assert_eq!(member_ids(&rotated), running, "the running instances are untouched");
    assert_eq!(rotated["tags"]["drydock:generation"], "3f2a9c01bd");

    // A repeat finds everything done and changes nothing.
    let before = p.stats();
    p.update_join(name, &o, &spec, &two).await.unwrap();
    let after = p.stats();
    for action in ["CreateLaunchTemplate", "UpdateAutoScalingGroup", "CreateOrUpdateTags", "DeleteLaunchTemplate"] {
        assert_eq!(after.get(action), before.get(action), "{action} on a repeat");
    }

    // An instance launched now (an in-place resize, which keeps the join tag) gets the new
    // secrets; the running ones keep what they were launched with.
    p.update_group(name, &settings(&net, 3)).await.unwrap();
    let grown = group(&m, name);
    assert_eq!(grown["tags"][TAG_JOIN], two.digest().as_str());
    let new: Vec<String> = member_ids(&grown).difference(&running).cloned().collect();
    assert_eq!(new.len(), 1, "{grown}");
    let launched = &grown["instances"][&new[0]];
    assert_eq!(launched["aws:ec2launchtemplate:id"], rotated["template"]["LaunchTemplateId"]);
    assert_eq!(launched[TAG_JOIN], two.digest().as_str());
    for id in &running {
        assert_eq!(grown["instances"][id]["aws:ec2launchtemplate:id"], first["template"]["LaunchTemplateId"]);
        assert_eq!(grown["instances"][id][TAG_JOIN], one.digest().as_str());
    }

    // A rotation interrupted before its tag: observation reads the template (its name no longer
    // matches the tag), and reports its secrets and its spec; the repeat sets the tag.
    m.py(&format!(
        "asg.create_or_update_tags(Tags=[{{'ResourceId': {name:?}, 'ResourceType': 'auto-scaling-group', \
         'Key': 'drydock:join', 'Value': {:?}, 'PropagateAtLaunch': True}}])\nout(None)",
        one.digest()
    ));
    let seen = observed(&p, name).await;
    assert_eq!(seen.join_digest, Some(two.digest()), "the template's own secrets");
    assert!(!seen.spec_partial);
    assert_eq!(seen.spec.bootstrap, Some(bootstrap.clone()));
    assert_eq!((seen.spec.labels.clone(), seen.spec.taints.clone()), (spec.labels.clone(), spec.taints.clone()));
    p.update_join(name, &o, &spec, &two).await.unwrap();
    assert_eq!(group(&m, name)["tags"][TAG_JOIN], two.digest().as_str());

    // A create retried with secrets rotated since finds the group and rotates it.
    let retried = p.create_group(&CreateGroup { join: Some(three.clone()), ..req.clone() }).await.unwrap();
    assert_eq!(retried.join_digest, Some(three.digest()));
    assert_eq!(observed(&p, name).await.join_digest, Some(three.digest()));
    assert_eq!(templates(&m, &o), BTreeSet::from([mapping::template_name_for(&o, Some(&three.digest()))]));

    // What update_join refuses.
    let err = p.update_join("b007-prod-nothing", &o, &spec, &two).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    let script = GenerationSpec { bootstrap: None, ..spec.clone() };
    let err = p.update_join(name, &o, &script, &two).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    let other = Ownership { generation: "0000000000".into(), ..o.clone() };
    let err = p.update_join(name, &other, &spec, &two).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    // A kubeadm group without secrets cannot be written.
    let err = p
        .create_group(&CreateGroup {
            name: "b007-prod-bare-g1".into(),
            ownership: ownership("bare", "g1"),
            join: None,
            ..req.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert!(err.message.contains("join secrets"), "{err}");

    // The node group's last group takes every template with it.
    p.delete_group(name).await.unwrap();
    assert_eq!(templates(&m, &o), BTreeSet::new());
}
