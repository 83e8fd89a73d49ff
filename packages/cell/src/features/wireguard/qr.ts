/**
 * A peer's config as a QR code for the WireGuard mobile apps ("Create from QR code").
 * Error correction M (15 %): a config of ~300 bytes stays a version-13-ish code that a phone
 * camera reads off a screen or paper quickly; higher levels make the modules smaller for little gain.
 */
import QRCode from 'qrcode';

const OPTIONS = { errorCorrectionLevel: 'M', margin: 4 } as const;

/** PNG image; `scale` pixels per module (8 gives ~600 px for a typical config). */
export async function configQrPng(configText: string, scale = 8): Promise<Buffer> {
  return QRCode.toBuffer(configText, { ...OPTIONS, type: 'png', scale });
}

/** SVG document (scales to any size; what the web console embeds). */
export async function configQrSvg(configText: string): Promise<string> {
  return QRCode.toString(configText, { ...OPTIONS, type: 'svg' });
}
