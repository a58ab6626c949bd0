//! Outputs after an apply: evaluated again with what exists now (each node group's group
//! names and instance ids), recorded in the state, and returned for printing.

use std::collections::BTreeMap;
use std::path::Path;

use drydock_apply::Ledger;
use drydock_config::value::Value;
use drydock_config::Inputs;
use drydock_state::OutputState;

use crate::{observe_all, Providers};

/// Evaluates the outputs with what exists now, records them in the state (only when they
/// changed: a no-op apply leaves the serial, and so saved plans, alone) and returns them as
/// `(name, text)` for printing, sensitive ones masked.
pub async fn record_outputs(
    path: &Path,
    inputs: &Inputs,
    ledger: &Ledger,
    providers: &Providers,
    lineage: &str,
) -> Result<Vec<(String, String)>, String> {
    let state = ledger.snapshot().await;
    let observed = observe_all(providers, lineage).await?;
    let mut computed = BTreeMap::new();
    // Groups by name: one lookup per group a node group names, whatever the fleet's size.
    let by_name: std::collections::HashMap<&str, &drydock_provider::ObservedGroup> =
        observed.values().flat_map(|o| o.groups.iter()).map(|g| (g.name.as_str(), g)).collect();
    for cs in state.clusters.values() {
        for (address, ng) in &cs.node_groups {
            let names: Vec<String> = ng.current().map(|g| g.groups.clone()).unwrap_or_default();
            // In the order the cloud lists them (by name), as the outputs always were.
            let mut groups: Vec<&drydock_provider::ObservedGroup> =
                names.iter().filter_map(|n| by_name.get(n.as_str()).copied()).collect();
            groups.sort_by(|a, b| a.name.cmp(&b.name));
            let ids: Vec<Value> = groups
                .iter()
                .flat_map(|g| g.instances.iter().filter(|i| i.is_live()))
                .map(|i| Value::String(i.id.clone()))
                .collect();
            let names = Value::List(names.into_iter().map(Value::String).collect());
            computed.insert(
                address.clone(),
                BTreeMap::from([("group_names".to_string(), names), ("instance_ids".to_string(), Value::List(ids))]),
            );
        }
    }
    let mut inputs = inputs.clone();
    inputs.computed = computed;
    let loaded = drydock_config::load(path, &inputs);
    let model = loaded.model.ok_or_else(|| "the configuration no longer evaluates".to_string())?;
    let outputs: BTreeMap<String, OutputState> = model
        .outputs
        .iter()
        .map(|o| {
            // A sensitive output is kept as a digest: the state file is not where secrets live.
            let value = if o.sensitive { recorded_digest(&o.value) } else { o.value.to_json() };
            (o.name.clone(), OutputState { value, sensitive: o.sensitive })
        })
        .collect();
    if state.outputs != outputs {
        ledger
            .update(drydock_state::journal::Touch::Outputs, |s| s.outputs = outputs)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(model
        .outputs
        .iter()
        .map(|o| (o.name.clone(), if o.sensitive { "(sensitive)".to_string() } else { o.value.to_string() }))
        .collect())
}

/// How the state records a sensitive output's value: `(sensitive: sha256 DIGEST)`, the first
/// 6 bytes (12 hex digits) of the SHA-256 of its JSON. `drydock output` evaluates the output
/// again and compares with this to show it only when it is the value applied.
pub fn recorded_digest(value: &Value) -> serde_json::Value {
    serde_json::Value::String(drydock_state::sensitive_digest(&value.to_json().to_string()))
}
