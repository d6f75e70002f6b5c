//! A network namespace joined to the host by a veth pair, on addresses the test makes up, so that
//! a real partition (a link that drops every packet) can be made and healed.

use std::process::Command;

/// A namespace `bt<pid>` with `10.213.N.2/30`, joined to the host side `10.213.N.1/30`.
pub struct Netns {
    /// The namespace's name.
    pub name: String,
    host_link: String,
    /// The host side's address.
    pub host_address: String,
}

impl Netns {
    /// Creates the namespace and its link; an error names the command that failed.
    pub fn create() -> Result<Self, String> {
        let pid = std::process::id();
        let subnet = pid % 250 + 1;
        let netns = Self {
            name: format!("bt{pid}"),
            host_link: format!("bth{pid}"),
            host_address: format!("10.213.{subnet}.1"),
        };
        let peer = format!("btn{pid}");
        let host_cidr = format!("{}/30", netns.host_address);
        let inner_cidr = format!("10.213.{subnet}.2/30");
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &netns.name],
            vec![
                "link",
                "add",
                &netns.host_link,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
            ],
            vec!["link", "set", &peer, "netns", &netns.name],
            vec!["addr", "add", &host_cidr, "dev", &netns.host_link],
            vec!["link", "set", &netns.host_link, "up"],
            vec!["-n", &netns.name, "addr", "add", &inner_cidr, "dev", &peer],
            vec!["-n", &netns.name, "link", "set", &peer, "up"],
            vec!["-n", &netns.name, "link", "set", "lo", "up"],
        ];
        for step in steps {
            ip(&step)?;
        }
        Ok(netns)
    }

    /// Drops every packet between the namespace and the host.
    pub fn cut(&self) {
        ip(&["link", "set", &self.host_link, "down"]).expect("link down");
    }

    /// Lets packets through again.
    pub fn heal(&self) {
        ip(&["link", "set", &self.host_link, "up"]).expect("link up");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_link]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip {}`: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
