/** The overlay engine's public surface. */
export { Overlay } from './overlay';
export { higherLayer, layerDepth } from './lookup';
export type { HistoryEntry, HistoryKind } from './history';
export type { OpenFlags } from './handles';
export { createError, isErrno, type OverlayError } from './errors';
export { makedev, overlayMounts, readMountinfo, upperInUse, type MountinfoEntry, type OverlayMount } from './mountinfo';
export { compareNames, decodeName, encodePath, hasEscapes, nameBytes } from './names';
export {
  detectWhiteoutFormat,
  listChoices,
  registerWhiteoutFormat,
  whiteoutFormatNames,
  type EntryVerdict,
  type Format,
  type FormatModule,
  type LayerDir,
  type RawEventKind,
} from './formats';
export { listOverlayMounts, parseDockerInspect, parseDockerLayerDir, parseMountinfoLine, parseMountOptions, resolveStack, type ResolvedStack } from './stack';
export * from './types';
