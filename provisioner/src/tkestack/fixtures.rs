//! TKEStack's templates as test fixtures: the keepalived.conf of two releases and the static pod, byte for byte, with their variables filled in the way `keepalived.go` does.

/// TKEStack's config template, byte for byte, as `keepalived.go` renders it with its three
/// variables (tkestack/tke `pkg/platform/provider/baremetal/manifests/keepalived/keepalived.conf`
/// at commit 62299fa6485a22d894ca39ff57c3393af8405657, Apache-2.0; a test fixture).
pub(crate) fn tkestack_conf(interface: &str, vrid: u8, vip: &str) -> String {
    CURRENT
        .replace("{{ .Interface }}", interface)
        .replace("{{ .VRID }}", &vrid.to_string())
        .replace("{{ .VIP }}", vip)
}

/// The template itself.
pub(crate) const CURRENT: &str = "global_defs {\n    enable_script_security\n    script_user root\n }\n\n vrrp_script chk {\n    script \"/bin/bash -c 'curl -m1 -k -s https://127.0.0.1:6443/healthz -o/dev/null'\"\n    interval 2\n    weight -10\n    fall 3\n    rise 1\n }\n\n vrrp_instance VI_1 {\n     state BACKUP\n     interface {{ .Interface }}\n     virtual_router_id {{ .VRID }}\n     priority 100\n     advert_int 1\n     authentication {\n         auth_type PASS\n         auth_pass 1111\n     }\n     virtual_ipaddress {\n         {{ .VIP }}\n     }\n     track_script {\n       chk\n     }\n }\n";

/// An older release of the same template (commit db6d20837368678fe8baa380106a325d23ac29be): a
/// plain-HTTP check with `fall 1`, the VRID fixed at 51, no trailing newline.
pub(crate) const OLDER: &str = "global_defs {\n    enable_script_security\n    script_user root\n }\n vrrp_script chk {\n    script \"/bin/bash -c 'curl -m1 -s http://127.0.0.1/healthz -o/dev/null'\"\n    interval 2\n    weight -10\n    fall 1\n    rise 1\n }\n vrrp_instance VI_1 {\n     state BACKUP\n     interface {{ .Interface }}\n     virtual_router_id 51\n     priority 100\n     advert_int 1\n     authentication {\n         auth_type PASS\n         auth_pass 1111\n     }\n     virtual_ipaddress {\n         {{ .VIP }}\n     }\n     track_script {\n       chk\n     }\n }";

/// TKEStack's static pod template (`manifests/keepalived/keepalived.yaml`, same repository),
/// with an image in place of `{{ .Image }}`.
pub(crate) const STATIC_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n    scheduler.alpha.kubernetes.io/critical-pod: \"\"\n  name: keepalived\n  namespace: kube-system\nspec:\n  containers:\n    - image: registry.tke.com/library/keepalived:2.0.16-r0\n      name: keepalived\n      args:\n        - --log-console\n        - --dont-fork\n      securityContext:\n        capabilities:\n          add:\n            - NET_ADMIN\n      volumeMounts:\n        - mountPath: /etc/keepalived/\n          name: conf-volume\n  hostNetwork: true\n  priorityClassName: system-cluster-critical\n  volumes:\n    - hostPath:\n        path: /etc/keepalived/\n        type: DirectoryOrCreate\n      name: conf-volume";
