/**
 * Compilation of stored flows, cached (no I/O: the store hands the texts in).
 *
 * Releases are frozen, so a compiled release is kept by `flow@version`; but a deleted or renamed
 * flow's name can be taken again (here or on another instance) with other releases under the same
 * numbers, so a hit is used only when the stored text is still the one it was compiled from. A
 * development copy is kept per flow with the text it was made from, and made again only when the
 * stored text differs; its parse (for summaries) and its compilation (for warnings and simulation)
 * are each done on first use, so listing the flows compiles nothing.
 */
import { loadSlidText, type CompiledService, type LoadResult } from '../../engine/load';
import type { NodeRegistry } from '../../engine/registry';
import { parseSlidText } from '../../engine/slid';
import { logicsOfDocument } from './compose';
import { FlowProblemsError } from './errors';
import type { LogicInfo } from './types';

export interface CompiledRelease { service: CompiledService; text: string }

export interface DevelopmentCopy {
  readonly text: string;
  /** Logic ids and names (from the parsed text; nothing compiled). */
  logics(): LogicInfo[];
  /** The engine's load of the text (compiled on first call). */
  load(): LoadResult;
}

export interface FlowCompiler {
  /** Loads a text (not cached: validation of arbitrary input). */
  load(text: string, file: string): LoadResult;
  /** A compiled release: the cached one when `text()` is still its text, else compiled from it; FlowProblemsError when it does not compile. */
  release(flow: string, version: number, text: () => Promise<string>): Promise<CompiledRelease>;
  /** The development copy of `flow` for this stored text (cached while the text stays the same). */
  development(flow: string, text: string): DevelopmentCopy;
  /** Seeds the development cache with a load already made (after a save). */
  remember(flow: string, text: string, loaded: LoadResult): void;
  /** Drops everything cached for `flow` (renamed or deleted). */
  forget(flow: string): void;
}

export function createFlowCompiler(registry: NodeRegistry): FlowCompiler {
  const releases = new Map<string, CompiledRelease>();
  const developments = new Map<string, DevelopmentCopy>();
  const load = (text: string, file: string) => loadSlidText(text, file, registry);

  function developmentCopy(flow: string, text: string, loaded?: LoadResult): DevelopmentCopy {
    let result = loaded;
    let logics: LogicInfo[] | undefined;
    const copy: DevelopmentCopy = {
      text,
      logics() {
        if (!logics) logics = result ? (result.doc ? logicsOfDocument(result.doc) : []) : logicsOfDocument(parseSlidText(text).doc);
        return logics;
      },
      load() {
        result ??= load(text, `${flow}.slid`);
        return result;
      },
    };
    developments.set(flow, copy);
    return copy;
  }

  return {
    load,
    async release(flow, version, text) {
      const key = `${flow}@${version}`;
      const hit = releases.get(key);
      const slid = await text();
      if (hit && hit.text === slid) return hit;
      const r = load(slid, `${flow} v${version}`);
      if (!r.service) throw new FlowProblemsError(r.problems, `flow "${flow}" release ${version} does not compile`);
      const compiled = { service: r.service, text: slid };
      releases.set(key, compiled);
      return compiled;
    },
    development(flow, text) {
      const hit = developments.get(flow);
      return hit && hit.text === text ? hit : developmentCopy(flow, text);
    },
    remember(flow, text, loaded) { developmentCopy(flow, text, loaded); },
    forget(flow) {
      developments.delete(flow);
      for (const key of [...releases.keys()]) if (key.startsWith(`${flow}@`)) releases.delete(key);
    },
  };
}
