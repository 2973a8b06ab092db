/**
 * nginx's `allow` / `deny` (ngx_http_access_module): the rules of the location a request's path
 * matches (else the top level's) are tried in order and the first that matches the client's
 * address decides; no rule matching allows. As in nginx, an IPv4 client is checked against the
 * IPv4 rules and `all`, an IPv6 client against the IPv6 rules and `all`, and an IPv4-mapped IPv6
 * address (`::ffff:10.0.0.1`, a dual-stack listener's view of an IPv4 client) as the IPv4
 * address it carries when there are IPv4 rules. Checked before anything of the request is read.
 */
import { BlockList, isIP } from 'node:net';
import type { AccessRule } from '../config/types';

interface CompiledRule {
  allow: boolean;
  family: AccessRule['family'];
  list: BlockList;
}

const V4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

export class AccessRules {
  private readonly rules: readonly CompiledRule[];
  private readonly hasIpv4: boolean;

  constructor(rules: readonly AccessRule[]) {
    this.rules = rules.map((rule) => {
      const list = new BlockList();
      if (rule.family !== 'all') list.addSubnet(rule.address, rule.prefix, rule.family);
      return { allow: rule.allow, family: rule.family, list };
    });
    this.hasIpv4 = this.rules.some((rule) => rule.family !== 'ipv6');
  }

  /** Whether a client at `address` may use the location. */
  allows(address: string | undefined): boolean {
    if (this.rules.length === 0) return true;
    let client = address ?? '';
    let family: 'ipv4' | 'ipv6' = isIP(client) === 6 ? 'ipv6' : 'ipv4';
    const mapped = family === 'ipv6' ? V4_MAPPED.exec(client) : null;
    if (mapped && this.hasIpv4) {
      client = mapped[1];
      family = 'ipv4';
    }
    for (const rule of this.rules) {
      if (rule.family === 'all' || (rule.family === family && isIP(client) !== 0 && rule.list.check(client, family))) return rule.allow;
    }
    return true;
  }
}
