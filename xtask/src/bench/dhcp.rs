//! `cargo xtask bench dhcp`: nm-rs's DHCPv4 (nm-core + nm-system-settings +
//! the unprivileged nm-dhcp-helper) side by side with NetworkManager and
//! systemd-networkd, on the same peer-bench lab and through the same scripts
//! (`bench-coldstart.sh`, `bench-reactivate.sh`, `bench-flap.sh`, dnsmasq
//! `--no-ping`), plus ours: the `null` adapter (the harness's own fixed cost)
//! and `bench-dhcp-nmrs.sh` (the nm-rs daemons' CPU alone, each daemon's
//! memory with one lease). The runner, the staging and the table are
//! `bench core`'s ([`super::peers`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;

use super::peers::{Row, Step, Suite, Target, collect, median, no_env, run_suite, table};

/// The dnsmasq variant the figures are for.
const VARIANT: &str = "noping";
/// The adapter that stands for the harness alone (`xtask/bench/adapters/null.sh`).
const NULL: &str = "null";
/// nm-rs driven by nmcli instead of its own nmctl (the reactivate group).
const NMCLI_DUT: &str = "nmrs-nmcli";
/// The row of down → up through nmcli: NetworkManager's figure and nm-rs's
/// through the same tool.
const NMCLI_REACT: &str = "react_nmcli_ready_ms";

/// A group of metrics: one script of the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Group {
    /// bench-coldstart.sh (with the null adapter) and bench-dhcp-nmrs.sh:
    /// launch → address + default route, CPU, memory.
    Cold,
    /// bench-reactivate.sh: down → up → address.
    Reactivate,
    /// bench-flap.sh: a 1 s carrier loss on the server side.
    Flap,
}

impl Group {
    pub const ALL: &[Group] = &[Group::Cold, Group::Reactivate, Group::Flap];
}

#[derive(Debug, Clone)]
pub struct DhcpOptions {
    pub runs: u32,
    pub only: Vec<Group>,
    pub daemons: Vec<String>,
    pub build: bool,
}

/// The scripts and their arguments for these options.
fn steps(opts: &DhcpOptions) -> Vec<Step> {
    let groups: &[Group] = if opts.only.is_empty() { Group::ALL } else { &opts.only };
    let common = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec!["-n".into(), opts.runs.to_string(), "-v".into(), VARIANT.into()];
        a.extend(opts.daemons.iter().cloned());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let with_nmrs = opts.daemons.iter().any(|d| d == "nmrs");
    let mut steps = Vec::new();
    for g in groups {
        match g {
            Group::Cold => {
                // One cold start per daemon and round, the daemons and the
                // null adapter (the harness alone) taking turns, each round
                // starting one further along: the machine's drift over the
                // minutes of a run (a millisecond and more) then weighs on
                // every daemon alike, and the fixed cost is measured among
                // the daemons rather than after them.
                let mut order: Vec<&str> = opts.daemons.iter().map(String::as_str).chain([NULL]).collect();
                for round in 0..opts.runs {
                    if round > 0 {
                        order.rotate_left(1);
                    }
                    for d in &order {
                        let args = ["-n", "1", "-v", VARIANT, d].map(String::from).to_vec();
                        steps.push(Step::new("bench-coldstart.sh", args));
                    }
                }
                if with_nmrs {
                    let args = vec!["-n".into(), opts.runs.to_string(), "nmrs".into()];
                    steps.push(Step::new("bench-dhcp-nmrs.sh", args));
                }
            }
            Group::Reactivate => {
                // nm-rs through its own nmctl (as networkd through networkctl),
                // then once more through nmcli, NetworkManager's tool, filed
                // apart (NMCLI_DUT) and shown on a row of its own.
                steps.push(Step::new("bench-reactivate.sh", common(&[])));
                if with_nmrs {
                    let args = vec!["-n".into(), opts.runs.to_string(), "-v".into(), VARIANT.into(), "nmrs".into()];
                    steps.push(
                        Step::new("bench-reactivate.sh", args)
                            .with_env("NMRS_CTL", "nmcli")
                            .with_env("NMRS_DUT_NAME", NMCLI_DUT),
                    );
                }
            }
            Group::Flap => steps.push(Step::new("bench-flap.sh", common(&[]))),
        }
    }
    steps
}

pub fn dhcp(opts: DhcpOptions) -> Result<ExitCode> {
    let steps = steps(&opts);
    let suite = Suite { name: "dhcp", steps, daemons: &opts.daemons, build: opts.build, render, env: no_env };
    Ok(run_suite(suite)?.code)
}

fn m(name: &str) -> String {
    format!("{name}[{VARIANT}]")
}

/// Metrics in table order and the targets.
fn known() -> Vec<(String, Option<Target>)> {
    use Target::*;
    let s = m;
    vec![
        (s("cold_v4_ms"), None),
        ("cold_net_ms".into(), Some(TimesNm(0.5))),
        (s("cpu_ready_ms"), None),
        ("dhcp_cpu_daemons_ms".into(), Some(AtMost(9.0))),
        ("dhcp_cpu_cgroup_ms".into(), None),
        ("dhcp_cpu_helper_ms".into(), None),
        ("dhcp_cpu_settings_ms".into(), None),
        ("dhcp_cpu_core_ms".into(), None),
        (s("react_ready_ms"), Some(AtMost(12.0))),
        (NMCLI_REACT.into(), None),
        (s("react_cmd_ms"), None),
        (s("react_cpu_ms"), None),
        (s("down_ms"), None),
        ("flap_kept_addr".into(), Some(Equals(1.0))),
        (s("flap_addr_removed"), None),
        (s("flap_route_removed"), None),
        (s("flap_same_addr"), None),
        (s("flap_restore_ms"), None),
        (s("flap_dhcp_msgs"), None),
        (s("flap_cpu_ms"), None),
        ("helper_rss_kb".into(), Some(AtMost(4.0 * 1024.0))),
        ("helper_pss_kb".into(), None),
        ("pss_kb".into(), Some(AtMost(7.0 * 1024.0))),
        ("daemons_pss_kb".into(), Some(AtMost(7.0 * 1024.0))),
        ("core_pss_kb".into(), None),
        ("settings_pss_kb".into(), None),
        ("rss_kb".into(), None),
        ("main_rss_kb".into(), None),
        ("nproc".into(), None),
        (s("cold_v6_ms"), None),
        (s("quiet_ms"), None),
        (s("cpu_settled_ms"), None),
    ]
}

/// The harness's fixed cost: the null adapter's median cold start.
fn fixed_cost(data: &BTreeMap<String, BTreeMap<String, Vec<f64>>>) -> Option<f64> {
    data.get(&m("cold_v4_ms")).and_then(|d| d.get(NULL)).and_then(|v| median(v))
}

/// The collected values plus what `bench dhcp` derives, run by run:
/// `cold_net_ms` (cold start minus the fixed cost) and `flap_kept_addr`
/// (1 when the address was never deleted). The null adapter's rows are
/// only the fixed cost, not a column.
pub fn derive(rows: &[Row]) -> BTreeMap<String, BTreeMap<String, Vec<f64>>> {
    let mut data = collect(rows);
    let fixed = fixed_cost(&data);
    let mut via_nmcli = BTreeMap::new();
    if let Some(react) = data.get(&m("react_ready_ms")) {
        if let Some(nm) = react.get("nm") {
            via_nmcli.insert("nm".to_string(), nm.clone());
        }
        if let Some(nmrs) = react.get(NMCLI_DUT) {
            via_nmcli.insert("nmrs".to_string(), nmrs.clone());
        }
    }
    for by in data.values_mut() {
        by.remove(NULL);
        by.remove(NMCLI_DUT);
    }
    if via_nmcli.contains_key("nmrs") {
        data.insert(NMCLI_REACT.into(), via_nmcli);
    }
    data.retain(|_, by| !by.is_empty());
    if let Some(fixed) = fixed
        && let Some(cold) = data.get(&m("cold_v4_ms"))
    {
        let net = cold.iter().map(|(d, v)| (d.clone(), v.iter().map(|c| c - fixed).collect())).collect();
        data.insert("cold_net_ms".into(), net);
    }
    if let Some(removed) = data.get(&m("flap_addr_removed")) {
        let kept = removed.iter().map(|(d, v)| (d.clone(), v.iter().map(|r| 1.0 - r).collect())).collect();
        data.insert("flap_kept_addr".into(), kept);
    }
    data
}

pub fn render(rows: &[Row]) -> String {
    let all = collect(rows);
    let fixed = fixed_cost(&all);
    let mut units: Vec<Row> = rows.to_vec();
    units.push(Row {
        daemon: String::new(),
        metric: "flap_kept_addr".into(),
        value: None,
        raw: String::new(),
        unit: "bool".into(),
        note: String::new(),
    });
    let mut data = derive(rows);
    data.remove("sandbox_overhead_ms");
    let mut out = table(&data, &units, &known());
    let runs = all.get(&m("cold_v4_ms")).and_then(|d| d.get(NULL)).map_or(0, Vec::len);
    let sandbox = all.get("sandbox_overhead_ms").and_then(|d| d.get("sandbox")).and_then(|v| median(v));
    let fixed_text = fixed.map_or_else(
        || "not measured (run the cold group)".to_string(),
        |f| {
            let sb = sandbox.map_or_else(String::new, |s| format!(", of which the sandbox set-up alone {s:.1} ms"));
            format!("{f:.1} ms (median of {runs} null-adapter cold starts{sb})")
        },
    );
    let _ = writeln!(
        out,
        "\nmedians over the runs, dnsmasq --no-ping; nm-rs = nm-core + nm-system-settings + nm-dhcp-helper (unprivileged,\n\
         CAP_NET_RAW + CAP_NET_BIND_SERVICE). harness fixed cost: {fixed_text}; cold_net_ms = cold_v4_ms minus it.\n\
         cpu_ready_ms is each daemon's cgroup (for nm-rs: also the adapter's wrapper shell);\n\
         dhcp_cpu_daemons_ms the three nm-rs daemons alone (schedstat). pss_kb: all processes of each daemon, after settling.\n\
         react_*: down and up through each daemon's own tool (nmcli, networkctl, nm-rs's nmctl);\n\
         {NMCLI_REACT}: NetworkManager's nmcli for both NetworkManager and nm-rs."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::peers::parse_results;

    const TSV: &str = "sandbox\tsandbox_overhead_ms\t31\tms\t\n\
        null\tcold_v4_ms[noping]\t20\tms\t\n\
        null\tcold_v4_ms[noping]\t22\tms\t\n\
        null\tcold_v6_ms[noping]\tFAIL\tms\tno v6\n\
        nm\tcold_v4_ms[noping]\t70\tms\t\n\
        nm\tcold_v4_ms[noping]\t72\tms\t\n\
        nmrs\tcold_v4_ms[noping]\t40\tms\t\n\
        nmrs\tcold_v4_ms[noping]\t42\tms\t\n\
        nm\tflap_addr_removed[noping]\t0\tbool\t\n\
        networkd\tflap_addr_removed[noping]\t1\tbool\t\n\
        nmrs\tflap_addr_removed[noping]\t0\tbool\t\n\
        nmrs\treact_ready_ms[noping]\t11\tms\t\n\
        nm\treact_ready_ms[noping]\t23\tms\t\n\
        nmrs-nmcli\treact_ready_ms[noping]\t19\tms\t\n\
        nmrs\thelper_rss_kb\t5000\tkB\t\n";

    #[test]
    fn steps_follow_the_options() {
        let opts = DhcpOptions { runs: 3, only: vec![], daemons: vec!["nm".into(), "nmrs".into()], build: false };
        let s = steps(&opts);
        let scripts: Vec<&str> = s.iter().map(|s| s.script).collect();
        let mut want = vec!["bench-coldstart.sh"; 9];
        want.extend(["bench-dhcp-nmrs.sh", "bench-reactivate.sh", "bench-reactivate.sh", "bench-flap.sh"]);
        assert_eq!(scripts, want);
        // cold starts one at a time, the daemons and the harness in turns
        let cold: Vec<&str> = s[..9].iter().map(|s| s.args[4].as_str()).collect();
        assert_eq!(cold, ["nm", "nmrs", "null", "nmrs", "null", "nm", "null", "nm", "nmrs"]);
        assert_eq!(s[0].args, ["-n", "1", "-v", "noping", "nm"]);
        assert_eq!(s[9].args, ["-n", "3", "nmrs"]);
        assert_eq!(s[10].args, ["-n", "3", "-v", "noping", "nm", "nmrs"]);
        assert!(s[10].env.is_empty());
        assert_eq!(s[11].args, ["-n", "3", "-v", "noping", "nmrs"]);
        assert!(s[11].env.contains(&("NMRS_CTL".into(), "nmcli".into())), "{:?}", s[11].env);
        let only_flap = DhcpOptions { only: vec![Group::Flap], daemons: vec!["nm".into()], ..opts };
        assert_eq!(steps(&only_flap).len(), 1);
    }

    #[test]
    fn derived_rows_subtract_the_fixed_cost() {
        let d = derive(&parse_results(TSV));
        assert_eq!(d["cold_net_ms"]["nm"], vec![49.0, 51.0]);
        assert_eq!(d["cold_net_ms"]["nmrs"], vec![19.0, 21.0]);
        assert_eq!(d["flap_kept_addr"]["networkd"], vec![0.0]);
        assert!(!d.values().any(|by| by.contains_key(NULL)), "null is no column");
        assert_eq!(d[NMCLI_REACT]["nm"], vec![23.0]);
        assert_eq!(d[NMCLI_REACT]["nmrs"], vec![19.0]);
        assert!(!d.values().any(|by| by.contains_key(NMCLI_DUT)), "nm-rs through nmcli is a row, not a column");
        assert_eq!(d[&m("react_ready_ms")]["nmrs"], vec![11.0]);
    }

    #[test]
    fn table_has_targets_and_the_fixed_cost() {
        let t = render(&parse_results(TSV));
        let line = |m: &str| t.lines().find(|l| l.starts_with(&format!("{m} "))).unwrap_or_else(|| panic!("{m}: {t}"));
        let net = line("cold_net_ms");
        assert!(net.contains("(25.0)") && net.ends_with("yes"), "{net}");
        let flap = line("flap_kept_addr");
        assert!(flap.contains(" yes ") && flap.contains(" no ") && flap.ends_with("yes"), "{flap}");
        assert!(line("react_ready_ms[noping]").ends_with("yes"));
        assert!(line("helper_rss_kb").ends_with("no"));
        assert!(t.contains("harness fixed cost: 21.0 ms (median of 2 null-adapter cold starts, of which the sandbox set-up alone 31.0 ms)"), "{t}");
        assert!(!t.contains("sandbox_overhead_ms"), "{t}");
        assert!(t.find("cold_net_ms").unwrap() < t.find("helper_rss_kb").unwrap());
    }
}
