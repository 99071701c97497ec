/**
 * Storage: the volumes of VMs and templates (overlays, private volumes),
 * through libvirt's storage API so that a remote libvirt host works as a
 * local one does. Saved state and snapshots stay with libvirt's domain calls.
 */
export {
  LibvirtVolumeStore,
  poolNameFor,
  parseVolumeXml,
  type VolumeInfo,
  type VolumeStore,
} from './volumes.js';
