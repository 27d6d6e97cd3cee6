/** The bans in force, indexed for the CONNECT check: by client id, by user name, and address ranges (IPv4 and IPv6 CIDR). */
import { BlockList, isIP } from 'node:net';
import type { StoredBan } from '../persistence/types.js';

/** An address as a BlockList checks it: an IPv4-mapped IPv6 address (::ffff:192.0.2.7) is its IPv4 address. */
export function normalAddress(address: string): { address: string; family: 'ipv4' | 'ipv6' } | undefined {
  const plain = address.replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i.exec(plain);
  const ip = mapped !== null ? mapped[1]! : plain.replace(/%.*$/, '');
  const family = isIP(ip);
  return family === 0 ? undefined : { address: ip, family: family === 4 ? 'ipv4' : 'ipv6' };
}

/** One address ban, compiled. */
interface AddressBan {
  ban: StoredBan;
  list: BlockList;
}

/** Bans by what they name; expired ones never match (they are removed by the sweep). */
export class BanList {
  private readonly byClientId = new Map<string, StoredBan>();
  private readonly byUsername = new Map<string, StoredBan>();
  private readonly addresses: AddressBan[] = [];

  constructor(bans: Iterable<StoredBan>) {
    for (const ban of bans) {
      if (ban.clientId !== undefined) this.byClientId.set(ban.clientId, ban);
      else if (ban.username !== undefined) this.byUsername.set(ban.username, ban);
      else if (ban.address !== undefined) {
        const list = addressList(ban.address);
        if (list !== undefined) this.addresses.push({ ban, list });
      }
    }
  }

  /** True when there is no ban at all (the common case: CONNECT pays one check). */
  get empty(): boolean {
    return this.byClientId.size === 0 && this.byUsername.size === 0 && this.addresses.length === 0;
  }

  /** The ban in force that names this client id, user name or address, if any. */
  match(clientId: string | undefined, username: string | undefined, address: string | undefined, now = Date.now()): StoredBan | undefined {
    const found =
      (clientId === undefined ? undefined : active(this.byClientId.get(clientId), now)) ??
      (username === undefined ? undefined : active(this.byUsername.get(username), now)) ??
      (address === undefined ? undefined : this.matchAddress(address, now));
    return found;
  }

  /** The address ban in force that covers `address`, if any. */
  matchAddress(address: string, now = Date.now()): StoredBan | undefined {
    if (this.addresses.length === 0) return undefined;
    const normal = normalAddress(address);
    if (normal === undefined) return undefined;
    for (const { ban, list } of this.addresses) if (active(ban, now) !== undefined && list.check(normal.address, normal.family)) return ban;
    return undefined;
  }
}

function active(ban: StoredBan | undefined, now: number): StoredBan | undefined {
  return ban !== undefined && (ban.until === undefined || ban.until > now) ? ban : undefined;
}

/** A BlockList holding one address or CIDR range; undefined for text that is neither. */
export function addressList(text: string): BlockList | undefined {
  const slash = text.indexOf('/');
  const normal = normalAddress(slash < 0 ? text : text.slice(0, slash));
  if (normal === undefined) return undefined;
  const list = new BlockList();
  if (slash < 0) list.addAddress(normal.address, normal.family);
  else list.addSubnet(normal.address, Number(text.slice(slash + 1)), normal.family);
  return list;
}
