//! Value conversions between the OCI (cgroup v1 shaped) resources and cgroup v2 files,
//! as runc converts them, and the host's huge page sizes.

use crate::error::{Error, Result};

/// cpu.shares (2..262144) to cpu.weight (1..10000); 0 stays "unset".
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// blkio.weight (10..1000) to io.weight (1..10000); 0 stays "unset".
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// OCI memory.swap is memory+swap; cgroup v2 memory.swap.max is swap alone.
/// Returns the value for memory.swap.max (None: leave it alone). Both inputs use
/// runc's convention: 0 unset, -1 unlimited.
pub fn swap_to_v2(swap: i64, memory: i64) -> Result<Option<String>> {
    let bad = |reason: &str| Error::Resource {
        path: "memory.swap.max".into(),
        reason: reason.to_string(),
    };
    if memory == -1 && swap == 0 {
        return Ok(Some("max".into()));
    }
    match swap {
        0 => Ok(None),
        -1 => Ok(Some("max".into())),
        _ if memory == 0 || memory == -1 => {
            Err(bad("unable to set swap limit without memory limit"))
        }
        _ if memory < 0 => Err(bad(&format!("invalid memory value: {memory}"))),
        _ if swap < memory => Err(bad("memory+swap limit should be >= memory limit")),
        _ => Ok(Some((swap - memory).to_string())),
    }
}

/// The huge page sizes this host supports, in the OCI form (`2MB`, `1GB`, `64KB`).
pub fn huge_page_sizes() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(page_size_from_dir))
        .collect()
}

/// `hugepages-2048kB` to `2MB`.
pub(crate) fn page_size_from_dir(name: &str) -> Option<String> {
    let kb: u64 = name
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    let mut size = kb;
    let mut unit = 1; // KB
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    while size >= 1024 && (size & 1023) == 0 && unit < UNITS.len() - 1 {
        size /= 1024;
        unit += 1;
    }
    Some(format!("{size}{}", UNITS[unit]))
}

/// Checks that `page_size` is one the host has.
pub(crate) fn check_page_size(page_size: &str, sizes: &[String]) -> Result<()> {
    if sizes.iter().any(|s| s == page_size) {
        return Ok(());
    }
    Err(Error::Resource {
        path: format!("hugetlb.{page_size}").into(),
        reason: format!(
            "hugepage size {page_size:?} is not supported by this host (it has {})",
            sizes.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_convert_like_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
    }

    #[test]
    fn blkio_weight_converts_like_runc() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 1 + 490 * 9999 / 990);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_is_memory_plus_swap() {
        assert_eq!(swap_to_v2(0, 0).unwrap(), None);
        assert_eq!(swap_to_v2(0, -1).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_to_v2(-1, 100).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_to_v2(300, 100).unwrap().as_deref(), Some("200"));
        assert_eq!(swap_to_v2(100, 100).unwrap().as_deref(), Some("0"));
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(50, 0).is_err());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(
            page_size_from_dir("hugepages-2048kB").as_deref(),
            Some("2MB")
        );
        assert_eq!(
            page_size_from_dir("hugepages-1048576kB").as_deref(),
            Some("1GB")
        );
        assert_eq!(
            page_size_from_dir("hugepages-64kB").as_deref(),
            Some("64KB")
        );
        assert_eq!(page_size_from_dir("other"), None);
        assert!(check_page_size("3MB", &["2MB".into()]).is_err());
        assert!(check_page_size("2MB", &["2MB".into()]).is_ok());
    }
}
