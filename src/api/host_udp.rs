//! The kernel's UDP counters for this host (its network namespace), from `/proc/net/snmp`.
//! Datagrams to a media port that no call holds never reach us: the kernel drops them and
//! counts them as `NoPorts`; datagrams a flooded socket had no room for are `RcvbufErrors`.
//! `/metrics` shows both so that such drops are counted somewhere a carrier can see. They are
//! host-wide: other programs' UDP traffic counts too.

/// The counters `/metrics` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostUdp {
    pub no_ports: u64,
    pub receive_buffer_errors: u64,
}

const SNMP: &str = "/proc/net/snmp";

/// Read the counters; None where the file is missing or unreadable (not Linux, no /proc).
pub async fn read() -> Option<HostUdp> {
    // tokio::fs: the read runs off the async workers.
    let text = tokio::fs::read_to_string(SNMP).await.ok()?;
    parse(&text)
}

/// The `Udp:` header line names the columns, the next `Udp:` line holds the values.
pub fn parse(snmp: &str) -> Option<HostUdp> {
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let names: Vec<&str> = udp.next()?.split_whitespace().skip(1).collect();
    let values: Vec<&str> = udp.next()?.split_whitespace().skip(1).collect();
    let get = |name: &str| -> Option<u64> {
        let i = names.iter().position(|n| *n == name)?;
        values.get(i)?.parse().ok()
    };
    Some(HostUdp {
        no_ports: get("NoPorts")?,
        receive_buffer_errors: get("RcvbufErrors")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Icmp: InMsgs InErrors\nIcmp: 5 0\n\
        Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
        Udp: 177964606 721049 2468096 181325103 2468001 0\n\
        UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
        UdpLite: 0 9 0 0 9 0\n";

    #[test]
    fn columns_are_found_by_name() {
        assert_eq!(
            parse(SAMPLE),
            Some(HostUdp {
                no_ports: 721_049,
                receive_buffer_errors: 2_468_001,
            })
        );
    }

    #[test]
    fn a_missing_or_garbled_table_reads_as_none() {
        assert_eq!(parse("Icmp: InMsgs\nIcmp: 5\n"), None);
        assert_eq!(parse("Udp: InDatagrams NoPorts\n"), None);
        assert_eq!(
            parse("Udp: NoPorts RcvbufErrors\nUdp: x 1\n"),
            None,
            "a value that is no number"
        );
    }

    #[tokio::test]
    async fn this_host_has_the_counters() {
        if cfg!(target_os = "linux") {
            assert!(read().await.is_some());
        }
    }
}
