//! The peers the tests talk to: programs (xmllint, xmlsec1, curl, a Python with zeep and
//! python-xmlsec) and reference files read from `../shared` (the official XSDs, GovWay's SPCoop
//! test files), and tools some tests use when installed (zsh, fish, groff, man,
//! systemd-analyze). The one answer to "is it here": build.rs includes this file to probe at
//! build time (a missing one becomes the cfg `pdd_no_<name>`, which marks its tests ignored,
//! except a required peer under `PDD_REQUIRE_PEERS`), and the tests ask again at run time (a
//! peer gone since the build fails the test).
//!
//! Standard library only: build.rs compiles it too.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Xmllint,
    Xmlsec1,
    Curl,
    /// A Python with zeep and python-xmlsec.
    Python,
    /// The official ClicLavoro and busta e-Gov XSDs (`reference/xsd` in the shared folder).
    Xsd,
    /// GovWay's SPCoop test files.
    Govway,
    /// PostgreSQL's server programs (the tests start private servers with them).
    Postgres,
    /// HAProxy, the load balancer of the cluster example.
    Haproxy,
    /// Chromium and its WebDriver (chromedriver): the console's browser test.
    Chromium,
    Zsh,
    Fish,
    Groff,
    Man,
    SystemdAnalyze,
    /// Mounting a small tmpfs (root, and `mount`): a disk that fills up for real.
    Tmpfs,
}

impl Peer {
    pub const ALL: [Peer; 15] = [
        Peer::Xmllint,
        Peer::Xmlsec1,
        Peer::Curl,
        Peer::Python,
        Peer::Xsd,
        Peer::Govway,
        Peer::Postgres,
        Peer::Haproxy,
        Peer::Chromium,
        Peer::Zsh,
        Peer::Fish,
        Peer::Groff,
        Peer::Man,
        Peer::SystemdAnalyze,
        Peer::Tmpfs,
    ];

    /// A protocol peer or reference corpus, which `PDD_REQUIRE_PEERS` (CI) requires; the
    /// others are tools tests use when present.
    pub fn required(self) -> bool {
        matches!(
            self,
            Peer::Xmllint
                | Peer::Xmlsec1
                | Peer::Curl
                | Peer::Python
                | Peer::Xsd
                | Peer::Govway
                | Peer::Postgres
                | Peer::Haproxy
                | Peer::Chromium
        )
    }

    /// The cfg build.rs sets when this peer is missing (and `PDD_REQUIRE_PEERS` is unset).
    pub fn cfg(self) -> &'static str {
        match self {
            Peer::Xmllint => "pdd_no_xmllint",
            Peer::Xmlsec1 => "pdd_no_xmlsec1",
            Peer::Curl => "pdd_no_curl",
            Peer::Python => "pdd_no_python",
            Peer::Xsd => "pdd_no_xsd",
            Peer::Govway => "pdd_no_govway",
            Peer::Postgres => "pdd_no_postgres",
            Peer::Haproxy => "pdd_no_haproxy",
            Peer::Chromium => "pdd_no_chromium",
            Peer::Zsh => "pdd_no_zsh",
            Peer::Fish => "pdd_no_fish",
            Peer::Groff => "pdd_no_groff",
            Peer::Man => "pdd_no_man",
            Peer::SystemdAnalyze => "pdd_no_systemd_analyze",
            Peer::Tmpfs => "pdd_no_tmpfs",
        }
    }

    /// What is missing and where it comes from (the tests' ignore reasons say the same).
    pub fn missing(self) -> String {
        match self {
            Peer::Xmllint => "xmllint is not installed (Debian libxml2-utils)".into(),
            Peer::Xmlsec1 => "xmlsec1 is not installed (Debian xmlsec1)".into(),
            Peer::Curl => "curl is not installed (Debian curl)".into(),
            Peer::Python => format!(
                "no Python with zeep and python-xmlsec at {} (PDD_PYTHON; see tests/python/requirements.txt)",
                python().display()
            ),
            Peer::Xsd => format!(
                "the official XSDs are absent: no {} (PDD_SHARED)",
                xsd().display()
            ),
            Peer::Govway => format!(
                "GovWay's SPCoop test files are absent: no {} (PDD_GOVWAY_TESTFILES, PDD_SHARED)",
                govway_testfiles().display()
            ),
            Peer::Postgres => {
                "PostgreSQL's server programs are not installed (Debian postgresql; or PDD_PG_BIN)"
                    .into()
            }
            Peer::Haproxy => "haproxy is not installed (Debian haproxy)".into(),
            Peer::Chromium => {
                "chromium or chromedriver is not installed (Debian chromium, chromium-driver)".into()
            }
            Peer::Zsh => "zsh is not installed".into(),
            Peer::Fish => "fish is not installed".into(),
            Peer::Groff => "groff is not installed".into(),
            Peer::Man => "man is not installed".into(),
            Peer::SystemdAnalyze => "systemd-analyze is not installed (Debian systemd)".into(),
            Peer::Tmpfs => "a tmpfs cannot be mounted here (needs root and mount)".into(),
        }
    }

    /// Whether the peer is here now.
    pub fn present(self) -> bool {
        match self {
            Peer::Xmllint => installed("xmllint"),
            Peer::Xmlsec1 => installed("xmlsec1"),
            Peer::Curl => installed("curl"),
            Peer::Zsh => installed("zsh"),
            Peer::Fish => installed("fish"),
            Peer::Groff => installed("groff"),
            Peer::Man => installed("man"),
            Peer::SystemdAnalyze => installed("systemd-analyze"),
            Peer::Python => runs(&python(), &["-c", "import zeep, xmlsec"]),
            Peer::Xsd => ["Busta.xsd", "CL_2_0_Candidatura.xsd"]
                .iter()
                .all(|f| xsd().join(f).is_file()),
            Peer::Govway => govway_testfiles().join("buste_errate").is_dir(),
            Peer::Postgres => postgres_bin().is_some(),
            Peer::Haproxy => runs(Path::new("haproxy"), &["-v"]),
            Peer::Chromium => installed("chromium") && installed("chromedriver"),
            Peer::Tmpfs => tmpfs_mounts(),
        }
    }
}

/// Whether a 1 MiB tmpfs can be mounted (and unmounted) in a folder of the temp dir.
fn tmpfs_mounts() -> bool {
    let dir = std::env::temp_dir().join(format!("pdd-tmpfs-probe-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return false;
    }
    let ok = runs(
        Path::new("mount"),
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "tmpfs",
            &dir.to_string_lossy(),
        ],
    ) && runs(Path::new("umount"), &[&dir.to_string_lossy()]);
    let _ = std::fs::remove_dir(&dir);
    ok
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The shared reference folder: `PDD_SHARED`, else `../shared` beside the project.
pub fn shared() -> PathBuf {
    var("PDD_SHARED").unwrap_or_else(|| root().join("../shared"))
}

/// The official XSDs.
pub fn xsd() -> PathBuf {
    shared().join("reference/xsd")
}

/// GovWay's SPCoop test files (`protocolli/spcoop/testsuite/deploy/testfiles/` in GovWay's
/// repository): `PDD_GOVWAY_TESTFILES`, else their copy in the shared folder.
pub fn govway_testfiles() -> PathBuf {
    var("PDD_GOVWAY_TESTFILES")
        .unwrap_or_else(|| shared().join("conformance/spcoop/govway-testfiles"))
}

/// The Python of the partner stack: `PDD_PYTHON`, else the venv `.ci/run` makes.
pub fn python() -> PathBuf {
    var("PDD_PYTHON").unwrap_or_else(|| root().join("target/pyenv/bin/python"))
}

/// Whether `PDD_REQUIRE_PEERS` is set: a missing required peer fails its tests.
pub fn required() -> bool {
    std::env::var_os("PDD_REQUIRE_PEERS").is_some()
}

/// Whether `program --version` runs and exits 0 (found on PATH, and works).
fn installed(program: &str) -> bool {
    runs(Path::new(program), &["--version"])
}

/// Whether `program args` runs and exits 0.
fn runs(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Where PostgreSQL's server programs are (as `pdd::kit::postgres::bin_dir` looks):
/// `PDD_PG_BIN`, `initdb` on the PATH, or Debian's `/usr/lib/postgresql/<version>/bin`.
pub fn postgres_bin() -> Option<PathBuf> {
    if let Some(d) = var("PDD_PG_BIN") {
        return d.join("initdb").is_file().then_some(d);
    }
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p).find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").is_file())
    })
}
