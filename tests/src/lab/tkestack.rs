//! A lab master as TKEStack leaves it: its keepalived.conf rendered from TKEStack's template, its keepalived static pod manifest, a control plane (the kube-apiserver manifest and the stand-in apiserver), and `tkeha-fake-kubelet`, a stand-in for kubelet's static-pod behaviour that runs keepalived in the foreground while the manifest exists and sends it SIGTERM when the manifest goes away. No kubelet or container engine runs here.

use super::Lab;
use super::cmd::in_ns;
use super::probe::wait_for;
use anyhow::{Context, Result, bail};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

/// TKEStack's keepalived.conf template, byte for byte (tkestack/tke
/// `pkg/platform/provider/baremetal/manifests/keepalived/keepalived.conf` at commit
/// 62299fa6485a22d894ca39ff57c3393af8405657, Apache-2.0), rendered by [`render_conf`] the way
/// `phases/keepalived/keepalived.go` does.
const CONF_TEMPLATE: &str = "global_defs {\n    enable_script_security\n    script_user root\n }\n\n vrrp_script chk {\n    script \"/bin/bash -c 'curl -m1 -k -s https://127.0.0.1:6443/healthz -o/dev/null'\"\n    interval 2\n    weight -10\n    fall 3\n    rise 1\n }\n\n vrrp_instance VI_1 {\n     state BACKUP\n     interface {{ .Interface }}\n     virtual_router_id {{ .VRID }}\n     priority 100\n     advert_int 1\n     authentication {\n         auth_type PASS\n         auth_pass 1111\n     }\n     virtual_ipaddress {\n         {{ .VIP }}\n     }\n     track_script {\n       chk\n     }\n }\n";

/// TKEStack's static pod template (`manifests/keepalived/keepalived.yaml`, same repository and
/// licence) with its image variable filled in.
const STATIC_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n    scheduler.alpha.kubernetes.io/critical-pod: \"\"\n  name: keepalived\n  namespace: kube-system\nspec:\n  containers:\n    - image: registry.tke.com/library/keepalived:2.0.16-r0\n      name: keepalived\n      args:\n        - --log-console\n        - --dont-fork\n      securityContext:\n        capabilities:\n          add:\n            - NET_ADMIN\n      volumeMounts:\n        - mountPath: /etc/keepalived/\n          name: conf-volume\n  hostNetwork: true\n  priorityClassName: system-cluster-critical\n  volumes:\n    - hostPath:\n        path: /etc/keepalived/\n        type: DirectoryOrCreate\n      name: conf-volume";

/// Where TKEStack writes the manifest, inside a master.
pub const MANIFEST: &str = "/etc/kubernetes/manifests/keepalived.yaml";
/// Where a tkeha drill parks it.
pub const PARKED: &str = "/etc/kubernetes/tkeha-drill/keepalived.yaml";
/// The stand-in kubelet's pid file, inside a master.
pub const KUBELET_PID_FILE: &str = "/run/tkeha-fake-kubelet.pid";

/// TKEStack's config for `interface`, `vrid` and `vip`.
pub fn render_conf(interface: &str, vrid: u8, vip: &str) -> String {
    CONF_TEMPLATE
        .replace("{{ .Interface }}", interface)
        .replace("{{ .VRID }}", &vrid.to_string())
        .replace("{{ .VIP }}", vip)
}

/// TKEStack's VRID rule: the VIP's last byte plus one.
pub fn vrid(vip: &str) -> u8 {
    vip.rsplit('.')
        .next()
        .and_then(|b| b.parse::<u8>().ok())
        .map_or(1, |b| b.saturating_add(1))
}

/// The stand-in kubelet's binary ($TKEHA_FAKE_KUBELET, or next to the test executable).
pub fn kubelet_binary() -> Result<PathBuf> {
    crate::bins::locate("tkeha-fake-kubelet", "TKEHA_FAKE_KUBELET")
}

impl Lab {
    /// Prepares master `i` as TKEStack would leave it: a control plane (the kube-apiserver
    /// manifest, the stand-in apiserver on :6443), TKEStack's keepalived.conf and its static pod
    /// manifest. Nothing runs keepalived yet: see [`Lab::start_fake_kubelet`].
    pub fn prepare_tkestack(&self, i: usize) -> Result<()> {
        self.mark_control_plane(i)?;
        self.start_apiserver(i)?;
        let etc = self.etc(i);
        let conf = etc.join("keepalived").join("keepalived.conf");
        fs::create_dir_all(etc.join("keepalived"))?;
        fs::write(&conf, render_conf("eth0", vrid(&self.vip()), &self.vip()))?;
        fs::set_permissions(&conf, fs::Permissions::from_mode(0o644))?;
        let manifests = etc.join("kubernetes").join("manifests");
        fs::create_dir_all(&manifests)?;
        fs::write(manifests.join("keepalived.yaml"), STATIC_POD)?;
        fs::set_permissions(
            manifests.join("keepalived.yaml"),
            fs::Permissions::from_mode(0o644),
        )?;
        Ok(())
    }

    /// Starts the stand-in kubelet on master `i`, noticing manifest changes every `poll_ms`
    /// (real kubelet: inotify, and a re-read every 20 s). It runs keepalived as TKEStack's pod
    /// does (`--log-console --dont-fork`, the default config path) with its pid files in a
    /// directory of its own, as in a container. Waits until keepalived runs if the manifest is
    /// there.
    pub fn start_fake_kubelet(&self, i: usize, poll_ms: u64) -> Result<()> {
        let bin = kubelet_binary()?;
        let log = self.masters[i].dir.join("kubelet.log");
        let script = format!(
            "mkdir -p /run/tkeha-fake-kubelet\n\
             nohup {bin} --manifest {MANIFEST} --poll-ms {poll_ms} --pid-file {KUBELET_PID_FILE} -- \
             keepalived --log-console --dont-fork --use-file /etc/keepalived/keepalived.conf \
             --pid /run/tkeha-fake-kubelet/keepalived.pid --vrrp_pid /run/tkeha-fake-kubelet/vrrp.pid \
             --checkers_pid /run/tkeha-fake-kubelet/checkers.pid >>{log} 2>&1 </dev/null &",
            bin = bin.display(),
            log = log.display()
        );
        in_ns(self.masters[i].sshd_pid, &script)?;
        if self
            .etc(i)
            .join("kubernetes/manifests/keepalived.yaml")
            .exists()
            && wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
                (!self.pids_named(i, "keepalived").is_empty()).then_some(())
            })
            .is_none()
        {
            let log = fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "the stand-in kubelet on {} started no keepalived: {}",
                self.masters[i].name,
                log.trim()
            );
        }
        Ok(())
    }

    /// Every master as TKEStack leaves it, each with its stand-in kubelet.
    pub fn tkestack_cluster(&self, poll_ms: u64) -> Result<()> {
        for i in 0..self.masters.len() {
            self.prepare_tkestack(i)
                .with_context(|| format!("preparing {} as TKEStack would", self.masters[i].name))?;
        }
        for i in 0..self.masters.len() {
            self.start_fake_kubelet(i, poll_ms)?;
        }
        Ok(())
    }

    /// sha256 of a file inside master `i` (`-` when it is missing).
    pub fn checksum(&self, i: usize, path: &str) -> String {
        self.exec(
            i,
            &format!("sha256sum {path} 2>/dev/null | cut -d' ' -f1 || true"),
        )
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_rendered_like_tkestack_does() {
        let c = render_conf("eth0", vrid("10.77.3.100"), "10.77.3.100");
        assert!(c.contains("     interface eth0\n     virtual_router_id 101\n"));
        assert!(c.contains("         10.77.3.100\n"));
        assert!(!c.contains("{{"));
        assert_eq!(vrid("10.0.0.0"), 1);
    }
}
