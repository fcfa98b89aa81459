//! Installing like a kubectl plugin: the krew manifest and archive of `scripts/release.sh`, checked against krew's rules and installed as krew does; `make install` and a clean `kubectl plugin list`.
//!
//! krew has no published JSON schema: its manifest is the Go type `index.Plugin`
//! (kubernetes-sigs/krew pkg/index/types.go), read strictly, and the krew-index checks are
//! `validation.ValidatePlugin` (pkg/index/validation/validate.go) plus the extra checks of
//! `cmd/validate-krew-manifest/main.go` (file name = plugin name, line lengths, every platform
//! selects a supported os/arch and no two select the same one, installs on each platform). The
//! types and rules below restate those, with our own code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::harness::Kubectl;

/// `index.Plugin`, with unknown fields refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Plugin {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: PluginSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
}

/// `index.PluginSpec`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PluginSpec {
    #[serde(default)]
    version: String,
    #[serde(default)]
    short_description: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    caveats: String,
    #[serde(default)]
    #[allow(dead_code)] // krew shows it; no rule reads it
    homepage: String,
    #[serde(default)]
    platforms: Vec<Platform>,
}

/// `index.Platform`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Platform {
    #[serde(default)]
    uri: String,
    #[serde(default)]
    sha256: String,
    selector: Option<Selector>,
    #[serde(default)]
    files: Vec<FileOperation>,
    #[serde(default)]
    #[allow(dead_code)] // krew shows it; no rule reads it
    license: String,
    #[serde(default)]
    bin: String,
}

/// `metav1.LabelSelector`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Selector {
    match_labels: Option<BTreeMap<String, String>>,
    match_expressions: Option<Vec<Requirement>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOperation {
    from: String,
    to: String,
}

/// The `<os, arch>` pairs krew installs on (krew's own release platforms).
const PLATFORMS: [(&str, &str); 8] = [
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("linux", "s390x"),
    ("windows", "amd64"),
];

impl Selector {
    fn matches(&self, os: &str, arch: &str) -> bool {
        let value = |key: &str| match key {
            "os" => Some(os),
            "arch" => Some(arch),
            _ => None,
        };
        let labels_ok = self
            .match_labels
            .iter()
            .flatten()
            .all(|(k, v)| value(k) == Some(v.as_str()));
        let exprs_ok = self.match_expressions.iter().flatten().all(|r| {
            let present = value(&r.key);
            match r.operator.as_str() {
                "In" => present.is_some_and(|v| r.values.iter().any(|x| x == v)),
                "NotIn" => !present.is_some_and(|v| r.values.iter().any(|x| x == v)),
                "Exists" => present.is_some(),
                "DoesNotExist" => present.is_none(),
                _ => false,
            }
        });
        labels_ok && exprs_ok
    }
}

/// krew's `ValidatePlugin` and `validate-krew-manifest` checks; the first violation, in words.
fn validate(file_name: &str, text: &str) -> Result<Plugin, String> {
    let p: Plugin = serde_saphyr::from_str(text).map_err(|e| format!("not a krew Plugin: {e}"))?;
    let name = file_name
        .strip_suffix(".yaml")
        .ok_or("the manifest file must end in .yaml")?;
    if p.api_version != "krew.googlecontainertools.github.com/v1alpha2" {
        return Err(format!("apiVersion {:?} is not supported", p.api_version));
    }
    if p.kind != "Plugin" {
        return Err(format!("kind {:?} is not Plugin", p.kind));
    }
    let safe = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let windows = [
        "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
        "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
    ];
    if !safe || windows.contains(&name.to_lowercase().as_str()) {
        return Err(format!("plugin name {name:?} is not allowed"));
    }
    if p.metadata.name != name {
        return Err(format!(
            "plugin should be named {name:?}, not {:?}",
            p.metadata.name
        ));
    }
    let s = &p.spec;
    if s.short_description.is_empty() {
        return Err("should have a short description".into());
    }
    if s.platforms.is_empty() {
        return Err("should have a platform specified".into());
    }
    if !is_semver_with_v(&s.version) {
        return Err(format!("version {:?} is not vMAJOR.MINOR.PATCH", s.version));
    }
    for (field, text, max) in [
        ("description", &s.description, 80),
        ("shortDescription", &s.short_description, 70),
        ("caveats", &s.caveats, 80),
    ] {
        if let Some(line) = text
            .lines()
            .find(|l| l.len() > max && l.trim().contains(' '))
        {
            return Err(format!(
                "a line of {field} is over {max} characters: {line:?}"
            ));
        }
    }
    for (i, pl) in s.platforms.iter().enumerate() {
        let at = |m: &str| format!("spec.platforms[{i}]: {m}");
        if pl.uri.is_empty() {
            return Err(at("URI has to be set"));
        }
        if !pl.uri.starts_with("https://") {
            return Err(at("the URI should be https"));
        }
        if !(pl.sha256.len() == 64
            && pl
                .sha256
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
        {
            return Err(at(&format!(
                "sha256 {:?} must match ^[a-f0-9]{{64}}$",
                pl.sha256
            )));
        }
        if pl.bin.is_empty() {
            return Err(at("bin has to be set"));
        }
        if pl.files.is_empty() {
            return Err(at("can't have a plugin without file operations"));
        }
        let Some(sel) = &pl.selector else {
            return Err(at("nil selector is not supported"));
        };
        if sel.match_labels.is_none() && sel.match_expressions.as_ref().is_none_or(Vec::is_empty) {
            return Err(at("empty selector is not supported"));
        }
        let keys = sel
            .match_labels
            .iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .chain(
                sel.match_expressions
                    .iter()
                    .flatten()
                    .map(|r| r.key.as_str()),
            );
        for key in keys {
            if key != "os" && key != "arch" {
                return Err(at(&format!("selector key {key:?} not supported")));
            }
        }
        if sel.match_labels.as_ref().is_some_and(BTreeMap::is_empty) {
            return Err(at("matchLabels specified but empty"));
        }
        if sel.match_expressions.as_ref().is_some_and(Vec::is_empty) {
            return Err(at("matchExpressions specified but empty"));
        }
        if !PLATFORMS.iter().any(|(os, arch)| sel.matches(os, arch)) {
            return Err(at("the selector matches no supported platform"));
        }
    }
    for (os, arch) in PLATFORMS {
        let matching: Vec<usize> = (0..s.platforms.len())
            .filter(|i| {
                s.platforms[*i]
                    .selector
                    .as_ref()
                    .is_some_and(|sel| sel.matches(os, arch))
            })
            .collect();
        if matching.len() > 1 {
            return Err(format!(
                "spec.platforms {matching:?} have overlapping selectors for {os}/{arch}"
            ));
        }
    }
    Ok(p)
}

fn is_semver_with_v(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let core = rest.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `scripts/release.sh` packaging `bin` into `dist`: (archive, filled manifest).
fn release(bin: &Path, dist: &Path) -> (PathBuf, PathBuf) {
    let out = Command::new("bash")
        .arg(repo().join("scripts/release.sh"))
        .env("TKEHA_BIN", bin)
        .env("DIST", dist)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    (PathBuf::from(lines[0]), PathBuf::from(lines[1]))
}

/// A small stand-in for the binary (it answers `version` as kubectl-tkeha does): the release
/// steps that do not need the real one run on it quickly.
fn stand_in(dir: &Path) -> PathBuf {
    let path = dir.join("stand-in");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho kubectl-tkeha {} linux/amd64\n",
            env!("CARGO_PKG_VERSION")
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
    path
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn the_released_manifest_passes_krews_rules_and_installs_as_krew_does() {
    let k = Kubectl::new();
    let dist = k.dir().join("dist");
    let (archive, manifest) = release(Path::new(env!("CARGO_BIN_EXE_kubectl-tkeha")), &dist);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let plugin = validate("tkeha.yaml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        plugin.spec.version,
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
    let platform = &plugin.spec.platforms[0];
    assert_eq!(
        platform.sha256,
        sha256(&archive),
        "the manifest names this archive"
    );
    assert!(
        platform
            .uri
            .ends_with(archive.file_name().unwrap().to_str().unwrap())
    );
    // The committed template differs only in the three values the release fills in.
    let template = std::fs::read_to_string(repo().join("plugins/tkeha.yaml")).unwrap();
    let filled = template
        .replace("RELEASE_VERSION", &plugin.spec.version)
        .replace("RELEASE_URI", &platform.uri)
        .replace("RELEASE_SHA256", &platform.sha256);
    assert_eq!(filled, text);

    // Install as krew does: unpack, run the file operations into the store, link `bin`.
    let unpacked = k.dir().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(status.success());
    let store = k.dir().join("krew/store/tkeha").join(&plugin.spec.version);
    std::fs::create_dir_all(&store).unwrap();
    for op in &platform.files {
        let from = unpacked.join(&op.from);
        assert!(from.is_file(), "{} is not in the archive", op.from);
        std::fs::copy(&from, store.join(&op.to).join(&op.from)).unwrap();
    }
    let bin_dir = k.dir().join("krew/bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(store.join(&platform.bin), bin_dir.join("kubectl-tkeha")).unwrap();
    assert!(store.join("LICENSE").is_file());
    let path = clean_path(&bin_dir);
    let out = Command::new("kubectl")
        .args(["tkeha", "version"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("kubectl-tkeha "));
}

#[test]
fn the_rules_refuse_broken_manifests() {
    let k = Kubectl::new();
    let bin = stand_in(k.dir());
    let (archive, manifest) = release(&bin, &k.dir().join("dist"));
    // The same archive twice: byte for byte (sorted, owner 0, fixed mtime, gzip -n).
    let (again, _) = release(&bin, &k.dir().join("dist2"));
    assert_eq!(sha256(&again), sha256(&archive));
    let good = std::fs::read_to_string(manifest).unwrap();
    assert!(validate("tkeha.yaml", &good).is_ok());
    let second = "  - selector:\n      matchExpressions:\n      - key: os\n        operator: In\n        values: [linux]\n    uri: https://x/y.tar.gz\n    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n    files:\n    - from: a\n      to: .\n    bin: a\n";
    for (file, text, words) in [
        ("other.yaml", good.clone(), "should be named"),
        (
            "tkeha.yaml",
            good.replace("kind: Plugin", "kind: Plugins"),
            "kind",
        ),
        (
            "tkeha.yaml",
            good.replace("version: v", "version: "),
            "version",
        ),
        (
            "tkeha.yaml",
            good.replace("sha256: ", "sha256: A"),
            "must match",
        ),
        (
            "tkeha.yaml",
            good.replace(
                "      matchLabels:\n        os: linux\n        arch: amd64\n",
                "      matchLabels: {}\n",
            ),
            "matchLabels specified but empty",
        ),
        (
            "tkeha.yaml",
            good.replace("os: linux", "distro: linux"),
            "not supported",
        ),
        (
            "tkeha.yaml",
            good.replace("    bin: kubectl-tkeha\n", ""),
            "bin has to be set",
        ),
        (
            "tkeha.yaml",
            good.replace("  homepage:", "  home:"),
            "not a krew Plugin",
        ),
        (
            "tkeha.yaml",
            format!("{good}{second}"),
            "overlapping selectors",
        ),
    ] {
        let err = validate(file, &text).unwrap_err();
        assert!(err.contains(words), "{words}: {err}");
    }
}

/// `dir`, then the inherited PATH without any other directory holding a kubectl-tkeha.
fn clean_path(dir: &Path) -> std::ffi::OsString {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(&inherited).filter(|d| {
        !d.join("kubectl-tkeha").exists() && !d.join("kubectl_complete-tkeha").exists()
    }));
    std::env::join_paths(dirs).unwrap()
}

#[test]
fn make_install_gives_kubectl_exactly_one_plugin_and_no_warning() {
    let k = Kubectl::new();
    let prefix = k.dir().join("prefix");
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(repo())
        .arg("install")
        .arg(format!("PREFIX={}", prefix.display()))
        .arg(format!(
            "KUBECTL_TKEHA={}",
            env!("CARGO_BIN_EXE_kubectl-tkeha")
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let bin = prefix.join("bin");
    for file in ["kubectl-tkeha", "kubectl_complete-tkeha"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(bin.join(file)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o755, "{file}");
    }
    let path = clean_path(&bin);
    let list = Command::new("kubectl")
        .args(["plugin", "list"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&list.stdout);
    let stderr = String::from_utf8_lossy(&list.stderr);
    assert!(list.status.success(), "{stdout}{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let tkeha: Vec<&str> = stdout.lines().filter(|l| l.contains("tkeha")).collect();
    assert_eq!(
        tkeha,
        [bin.join("kubectl-tkeha").to_str().unwrap()],
        "{stdout}"
    );
    // kubectl completes the plugin through the installed shim.
    let complete = Command::new("kubectl")
        .args(["__complete", "tkeha", "vers"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&complete.stdout).starts_with("version"),
        "{complete:?}"
    );

    // What installing avoids: a cargo target directory on PATH holds kubectl-tkeha.d too.
    let target = k.dir().join("target-like");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_kubectl-tkeha"),
        target.join("kubectl-tkeha"),
    )
    .unwrap();
    std::fs::write(target.join("kubectl-tkeha.d"), "deps\n").unwrap();
    let list = Command::new("kubectl")
        .args(["plugin", "list"])
        .env("PATH", clean_path(&target))
        .output()
        .unwrap();
    assert!(!list.status.success());
    assert!(
        String::from_utf8_lossy(&list.stderr).contains("warning"),
        "{list:?}"
    );
}
