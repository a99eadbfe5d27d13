//! What a profile's `tc` setting puts on its device, pure: its qdiscs and
//! filters as nm-platform takes them. A profile without the setting leaves
//! the device's traffic control alone; with it (even empty) the device
//! gets exactly what it lists, as NetworkManager 1.42 does.

use nm_model::{Connection, Value, VarDict};
use nm_platform::{Qdisc, QdiscOptions, TcAction, TcFilter};

/// A device's traffic control: its qdiscs, then its filters.
pub type TcPlan = (Vec<Qdisc>, Vec<TcFilter>);

/// The profile's qdiscs and filters; `None` without a `tc` setting. A
/// mirred action names its device, `ifindex` finds it (an unknown device
/// is an error: the filter would send packets nowhere).
pub fn plan(conn: &Connection, ifindex: impl Fn(&str) -> Option<u32>) -> Option<Result<TcPlan, String>> {
    conn.settings.get("tc")?;
    let list = |prop: &str| conn.get("tc", prop).and_then(Value::as_dict_list).unwrap_or_default();
    let qdiscs = list("qdiscs").iter().map(qdisc).collect();
    let filters: Result<Vec<TcFilter>, String> = list("tfilters").iter().map(|f| filter(f, &ifindex)).collect();
    Some(filters.map(|f| (qdiscs, f)))
}

fn num(d: &VarDict, key: &str) -> Option<u64> {
    d.get(key).and_then(Value::as_i128).and_then(|v| u64::try_from(v).ok())
}

fn u32_of(d: &VarDict, key: &str) -> u32 {
    num(d, key).and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

fn kind(d: &VarDict) -> String {
    d.get("kind").and_then(Value::as_str).unwrap_or_default().to_string()
}

fn qdisc(d: &VarDict) -> Qdisc {
    let kind = kind(d);
    let options = match kind.as_str() {
        "fq_codel" => QdiscOptions::FqCodel {
            limit: u32_of(d, "limit"),
            flows: u32_of(d, "flows"),
            target: u32_of(d, "target"),
            interval: u32_of(d, "interval"),
            quantum: u32_of(d, "quantum"),
            ce_threshold: d.contains_key("ce_threshold").then(|| u32_of(d, "ce_threshold")),
            memory_limit: d.contains_key("memory_limit").then(|| u32_of(d, "memory_limit")),
            ecn: d.get("ecn").and_then(Value::as_bool).unwrap_or(false),
        },
        "sfq" => QdiscOptions::Sfq {
            quantum: u32_of(d, "quantum"),
            perturb: d.get("perturb").and_then(Value::as_i128).and_then(|v| i32::try_from(v).ok()).unwrap_or(0),
            limit: u32_of(d, "limit"),
            divisor: u32_of(d, "divisor"),
            flows: u32_of(d, "flows"),
            depth: u32_of(d, "depth"),
        },
        "tbf" => QdiscOptions::Tbf {
            rate: num(d, "rate").unwrap_or(0),
            burst: u32_of(d, "burst"),
            limit: u32_of(d, "limit"),
            latency: u32_of(d, "latency"),
        },
        "prio" => QdiscOptions::Prio,
        _ => QdiscOptions::None,
    };
    Qdisc { kind, parent: u32_of(d, "parent"), handle: u32_of(d, "handle"), options }
}

fn filter(d: &VarDict, ifindex: &impl Fn(&str) -> Option<u32>) -> Result<TcFilter, String> {
    let action = match d.get("action").and_then(Value::as_var_dict) {
        None => None,
        Some(a) => {
            let flag = |k: &str| a.get(k).and_then(Value::as_bool).unwrap_or(false);
            Some(match kind(&a).as_str() {
                "simple" => TcAction::Simple(a.get("sdata").and_then(Value::as_bytes).unwrap_or_default().to_vec()),
                "mirred" => {
                    let dev = a.get("dev").and_then(Value::as_str).unwrap_or_default();
                    let ifindex = ifindex(dev).ok_or_else(|| format!("mirred: no device '{dev}'"))?;
                    TcAction::Mirred { ingress: flag("ingress"), redirect: flag("redirect"), ifindex }
                }
                other => TcAction::Other(other.to_string()),
            })
        }
    };
    Ok(TcFilter { kind: kind(d), parent: u32_of(d, "parent"), handle: u32_of(d, "handle"), action })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nm_model::{keyfile, validate};

    fn conn(tc: &str) -> Connection {
        let text = format!("[connection]\nid=e\nuuid=4f0e9a39-33d1-4c77-8f0c-6d4b2f9d1e10\ntype=ethernet\n{tc}");
        validate::normalize_and_validate(keyfile::parse(&text).unwrap()).unwrap()
    }

    #[test]
    fn qdiscs_and_filters_of_a_profile() {
        assert_eq!(plan(&conn(""), |_| None), None, "no tc setting: the device's own stay");
        assert_eq!(plan(&conn("\n[tc]\n"), |_| None), Some(Ok((vec![], vec![]))), "an empty one clears them");
        let c = conn(
            "\n[tc]\nqdisc.root=handle 1: tbf rate 125000 burst 5000 latency 50000\nqdisc.ffff:fff1=ingress\n\
             tfilter.ffff:=matchall action mirred egress redirect dev eth9\n",
        );
        let (q, f) = plan(&c, |d| (d == "eth9").then_some(9)).unwrap().unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(
            q[0],
            Qdisc {
                kind: "tbf".into(),
                parent: 0xffff_ffff,
                handle: 0x0001_0000,
                options: QdiscOptions::Tbf { rate: 125_000, burst: 5000, limit: 0, latency: 50_000 },
            }
        );
        assert_eq!(
            (q[1].kind.as_str(), q[1].parent, q[1].options.clone()),
            ("ingress", 0xffff_fff1, QdiscOptions::None)
        );
        assert_eq!(f[0].action, Some(TcAction::Mirred { ingress: false, redirect: true, ifindex: 9 }));
        assert_eq!(plan(&c, |_| None), Some(Err("mirred: no device 'eth9'".into())));
    }
}
