/** The install machinery `create` drives: media, kickstart injection, command line, progress. */
export { installKernelCmdline, validateTreeUrl, type InstallCmdlineOptions } from './cmdline.js';
export { newcArchive, type CpioFile } from './cpio.js';
export {
  KICKSTART_PATH_IN_INITRD,
  kickstartArchive,
  removeInstallBoot,
  stageInstallBoot,
  type InstallBootFiles,
  type StageOptions,
} from './initrd.js';
export { followFile, type FollowOptions } from './log-follower.js';
export { consoleLogPath, ensureLogDir, installLogDir, installLogPath } from './logs.js';
export {
  ChecksumMismatchError,
  defaultTreeUrl,
  fetchInstallMedia,
  mediaCacheDir,
  type DownloadProgress,
  type FetchMediaOptions,
  type InstallMedia,
  type MediaFile,
} from './media.js';
export { monitorInstall, type InstallOutcome, type InstallStatus, type MonitorOptions } from './monitor.js';
export {
  INSTALL_FAILED_MARKER,
  INSTALL_OK_MARKER,
  InstallProgressParser,
  parseInstallLog,
  STAGE_LABELS,
  type InstallProgressState,
  type InstallStage,
  type ProgressEvent,
} from './progress.js';
export { parseTreeInfo, TreeInfoError, type TreeImage, type TreeInfo } from './treeinfo.js';
