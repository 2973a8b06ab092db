import type { LocationConfig } from '../config/types';

/** nginx's choice among literal locations: an exact match wins, else the longest matching prefix. */
export function matchLocation<L extends Pick<LocationConfig, 'match' | 'path'>>(locations: readonly L[], uriPath: string): L | undefined {
  let best: L | undefined;
  for (const location of locations) {
    if (location.match === 'exact') {
      if (location.path === uriPath) return location;
    } else if (uriPath.startsWith(location.path) && (!best || location.path.length > best.path.length)) {
      best = location;
    }
  }
  return best;
}
