import type { Binding } from '../../../services/location/types';

/**
 * A binding as Kamailio's usrloc leaves one through db_mongodb or db_postgres (what
 * services/location/tolerant.ts makes of it): no received, path, methods or instance, q -1, no
 * flags, user agent `n/a`. The tests give the AoR, contact, times and ruid.
 */
export function kamailioBinding(b: Pick<Binding, 'ruid' | 'username' | 'contact' | 'expires' | 'last_modified'> & Partial<Binding>): Binding {
  return {
    domain: null,
    received: null,
    path: null,
    q: -1,
    callid: 'c1',
    cseq: 1,
    flags: 0,
    cflags: 0,
    user_agent: 'n/a',
    socket: 'udp:127.0.0.1:5090',
    methods: null,
    instance: null,
    reg_id: 0,
    server_id: 0,
    connection_id: -1,
    keepalive: 0,
    partition: 0,
    ...b,
  };
}
