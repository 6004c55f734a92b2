/**
 * The external-query ports of query.enum and query.ldap built from the `nodes.enum` and
 * `nodes.ldap` configuration, for every place a run context is made (server/runtime.ts, the SIP
 * worker threads, the CLI). Each process or thread opens its own: a DNS resolver, and an LDAP
 * connection only when `nodes.ldap.url` is set.
 */
import type { DnsPort, LdapPort } from '../engine/ports';
import { createEnumResolver } from '../services/enum/resolver';
import { createLdapClient } from '../services/ldap/client';
import type { Config } from './config';

export interface QueryPorts {
  dns: DnsPort;
  ldap?: LdapPort;
  close(): Promise<void>;
}

export function openQueryPorts(nodes: Pick<Config['nodes'], 'enum' | 'ldap'> | undefined): QueryPorts {
  const dns = createEnumResolver(nodes?.enum.servers ?? []);
  const ldapConfig = nodes?.ldap;
  const ldap = ldapConfig?.url ? createLdapClient({ url: ldapConfig.url, bindDn: ldapConfig.bindDn, bindPassword: ldapConfig.bindPassword }) : undefined;
  return {
    dns,
    ldap,
    async close() {
      dns.close();
      await ldap?.close();
    },
  };
}
