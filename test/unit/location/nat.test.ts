import { BlockList } from 'node:net';
import { isPrivateAddress } from '../../../services/location/nat';

/** The blocks as docs/security.md and services/location/nat.ts name them, checked by BlockList alone. */
function reference(): (host: string) => boolean {
  const list = new BlockList();
  for (const [net, prefix] of [
    ['10.0.0.0', 8],
    ['172.16.0.0', 12],
    ['192.168.0.0', 16],
    ['100.64.0.0', 10],
    ['169.254.0.0', 16],
  ] as const)
    list.addSubnet(net, prefix, 'ipv4');
  list.addSubnet('fc00::', 7, 'ipv6');
  list.addSubnet('fe80::', 10, 'ipv6');
  return (host) => {
    const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    if (/^\d+\.\d+\.\d+\.\d+$/.test(h)) return list.check(h, 'ipv4');
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped ? list.check(mapped[1], 'ipv4') : list.check(h, 'ipv6');
  };
}

describe('isPrivateAddress (services/location/nat.ts): the quick answer for addresses outside the blocks never differs from BlockList', () => {
  const ref = reference();

  test('the edges of every block and their neighbours', () => {
    const cases = [
      ['10.0.0.0', true],
      ['10.255.255.255', true],
      ['9.255.255.255', false],
      ['11.0.0.0', false],
      ['172.16.0.1', true],
      ['172.31.255.255', true],
      ['172.15.255.255', false],
      ['172.32.0.0', false],
      ['192.168.0.0', true],
      ['192.168.255.255', true],
      ['192.167.255.255', false],
      ['192.169.0.0', false],
      ['100.64.0.0', true],
      ['100.127.255.255', true],
      ['100.63.255.255', false],
      ['100.128.0.0', false],
      ['169.254.0.1', true],
      ['169.253.255.255', false],
      ['127.0.0.1', false],
      ['198.51.100.7', false],
      ['0.0.0.0', false],
      ['255.255.255.255', false],
      ['fc00::1', true],
      ['fdff:ffff::1', true],
      ['[FD12::1]', true],
      ['fe80::1', true],
      ['febf::1', true],
      ['fec0::1', false],
      ['fbff::1', false],
      ['f::1', false],
      ['2001:db8::1', false],
      ['::1', false],
      ['::', false],
      ['::ffff:10.1.2.3', true],
      ['::ffff:8.8.8.8', false],
      ['::ffff:a01:203', true], // 10.1.2.3 mapped, in hexadecimal
      ['0:0:0:0:0:ffff:c0a8:101', true], // 192.168.1.1
      ['::ffff:808:808', false],
      ['::a00:1', false], // IPv4-compatible, not mapped: BlockList does not match it
      ['example.test', false],
      ['10.0.0', false],
      ['', false],
    ] as const;
    expect(cases.map(([a]) => [a, isPrivateAddress(a)])).toEqual(cases.map(([a, want]) => [a, want]));
    // and the table above is BlockList's own answer
    for (const [a, want] of cases) if (/[.:]/.test(a) && a !== '10.0.0') expect([a, ref(a)]).toEqual([a, want]);
  });

  test('oversized or crafted hosts (the sender chooses its Contact): not private, as BlockList says', () => {
    for (const host of ['a'.repeat(100_000), 'ffff:'.repeat(20_000), `[${'f'.repeat(50_000)}]`, '10.0.0.1'.repeat(10_000), '::ffff:' + '1.'.repeat(20_000)]) {
      expect([host.slice(0, 12), isPrivateAddress(host)]).toEqual([host.slice(0, 12), false]);
    }
  });

  test('every first octet, and random IPv4 and IPv6 addresses: the same answer as BlockList', () => {
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const v4: string[] = [];
    for (let first = 0; first < 256; first++) for (let i = 0; i < 8; i++) v4.push(`${first}.${rand(256)}.${rand(256)}.${rand(256)}`);
    const v6: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const groups = Array.from({ length: 8 }, () => rand(0x10000).toString(16));
      if (i % 3 === 0) groups[0] = (0xfc00 + rand(0x400)).toString(16); // near the blocks
      v6.push(groups.join(':'));
      v6.push(`::ffff:${v4[rand(v4.length)]}`);
    }
    const all = [...v4, ...v6];
    const differing = all.filter((a) => isPrivateAddress(a) !== ref(a));
    expect(differing).toEqual([]);
    // the sample reaches both answers
    expect(all.filter((a) => ref(a)).length).toBeGreaterThan(500);
  });
});
