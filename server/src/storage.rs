//! Backend selection, as Nacos does it: `spring.sql.init.platform` (or the older
//! `spring.datasource.platform`) names the backend; empty means embedded.

use nacos_core::Repos;

use crate::{Settings, StartError};

/// Backends this build knows of, and whether each is compiled in.
const KNOWN: &[(&str, bool)] = &[
    (nacos_storage_embedded::NAME, true),
    ("mysql", false),
    ("postgresql", false),
];

pub fn open(settings: &Settings) -> Result<Repos, StartError> {
    let platform = settings.platform.to_ascii_lowercase();
    let name = if platform.is_empty() {
        nacos_storage_embedded::NAME
    } else {
        platform.as_str()
    };
    match KNOWN.iter().find(|(known, _)| *known == name) {
        None => Err(StartError::Unsupported(format!(
            "unknown storage platform '{name}' (spring.sql.init.platform); known: {}",
            KNOWN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ))),
        Some((_, false)) => Err(StartError::Unsupported(format!(
            "storage platform '{name}' is known but not compiled into this build; available: {}",
            KNOWN
                .iter()
                .filter(|(_, c)| *c)
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Some(_) => {
            let dir = settings.data_dir();
            nacos_storage_embedded::open_repos(&dir).map_err(|e| {
                StartError::Storage(format!(
                    "cannot open embedded storage in {}: {e}",
                    dir.display()
                ))
            })
        }
    }
}
