/**
 * The external ports of query.enum, query.ldap and output.syslog built from the `nodes.enum`,
 * `nodes.ldap` and `nodes.syslog` configuration, for every place a run context is made
 * (server/runtime.ts, the SIP worker threads, the CLI). Each process or thread opens its own: a
 * DNS resolver, an LDAP connection only when `nodes.ldap.url` is set, a syslog socket only when
 * `nodes.syslog.target` is.
 */
import type { DnsPort, LdapPort, SyslogPort } from '../engine/ports';
import { createEnumResolver } from '../services/enum/resolver';
import { createLdapClient } from '../services/ldap/client';
import { createSyslogSender } from '../services/syslog/udp';
import type { Config } from './config';

export interface QueryPorts {
  dns: DnsPort;
  ldap?: LdapPort;
  syslog?: SyslogPort;
  close(): Promise<void>;
}

export function openQueryPorts(nodes: Pick<Config['nodes'], 'enum' | 'ldap' | 'syslog'> | undefined): QueryPorts {
  const dns = createEnumResolver(nodes?.enum.servers ?? []);
  const ldapConfig = nodes?.ldap;
  const ldap = ldapConfig?.url ? createLdapClient({ url: ldapConfig.url, bindDn: ldapConfig.bindDn, bindPassword: ldapConfig.bindPassword }) : undefined;
  const s = nodes?.syslog;
  const syslog = s?.target ? createSyslogSender({ target: s.target, hostname: s.hostname, maxMessageBytes: s.maxMessageBytes }) : undefined;
  return {
    dns,
    ldap,
    syslog,
    async close() {
      dns.close();
      syslog?.close();
      await ldap?.close();
    },
  };
}
