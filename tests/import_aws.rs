//! A lost state on AWS (moto, see `tests/moto`): `plan` and `apply` refuse to build a second
//! copy of what runs under the old lineage (found with a cluster-tag lookup of the Auto
//! Scaling groups), and `drydock import` adopts it without a cloud change — checked with boto3
//! describe calls, not with drydock's own view.

mod common;
mod moto;

use moto::{Moto, STATE_BUCKET, STATE_KEY};
use serde_json::Value;

/// Every Auto Scaling group with its instance ids, sorted.
fn groups(m: &Moto) -> Value {
    m.py("gs = asg.describe_auto_scaling_groups()['AutoScalingGroups']\n\
         out(sorted([[g['AutoScalingGroupName'], sorted(i['InstanceId'] for i in g['Instances'])] for g in gs]))")
}

#[test]
fn a_lost_state_is_refused_then_imported_without_a_cloud_change() {
    let m = Moto::start();
    let net = m.network();
    let dir = moto::aws_example();
    let vars = net.vars(&net.images[0]);
    let run = |args: &[&str]| m.drydock(dir.path(), args, &vars);
    let ok = |args: &[&str]| {
        let out = run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "drydock {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    ok(&["apply", ".", "--auto-approve"]);
    let lineage = m.example_state()["lineage"].as_str().unwrap().to_string();
    let before = groups(&m);
    assert!(before.as_array().unwrap().len() >= 2, "{before}");

    // The state object and its journal are lost (every version).
    m.py(&format!(
        "b = '{STATE_BUCKET}'\n\
         for v in s3.list_object_versions(Bucket=b, Prefix='{STATE_KEY}').get('Versions', []):\n    \
             s3.delete_object(Bucket=b, Key=v['Key'], VersionId=v['VersionId'])\n\
         out(None)"
    ));
    for args in [&["plan", "."][..], &["apply", ".", "--auto-approve"][..]] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("runs already under another state") && stderr.contains(&lineage), "{stderr}");
        assert!(stderr.contains("drydock import"), "{stderr}");
    }
    assert_eq!(groups(&m), before, "no second copy was made");

    let out = ok(&["import", "."]);
    assert!(out.contains("Imported") && out.contains(&lineage), "{out}");
    assert_eq!(m.example_state()["lineage"], lineage.as_str());
    let out = run(&["plan", ".", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "nothing to do after the import:\n{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(groups(&m), before, "the import changed nothing in the cloud");
}
