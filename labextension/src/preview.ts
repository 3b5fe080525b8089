/**
 * Image previews of artifacts. An object URL belongs to JupyterLab's origin: opened in a
 * tab, an SVG or HTML blob would run its script as the user. So only raster images are
 * previewed (PNG, JPEG, GIF, WebP), and only after their first bytes prove what they are;
 * the blob handed to the page carries that checked type, never the server's label.
 */

export type RasterType = 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp';

/** What each raster type's file starts with; null matches any byte. */
const MAGIC: [RasterType, (number | null)[]][] = [
  ['image/png', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  ['image/jpeg', [0xff, 0xd8, 0xff]],
  ['image/gif', [0x47, 0x49, 0x46, 0x38, null, 0x61]], // GIF87a, GIF89a
  // RIFF, the chunk size, WEBP
  [
    'image/webp',
    [0x52, 0x49, 0x46, 0x46, null, null, null, null, 0x57, 0x45, 0x42, 0x50]
  ]
];
const HEAD_BYTES = 12;

/** Whether an artifact's recorded media type is one we would preview at all. */
export function isRasterType(mediaType: string | null | undefined): boolean {
  return MAGIC.some(([type]) => type === (mediaType ?? '').toLowerCase());
}

/** The raster type these first bytes are, or null: no PNG, JPEG, GIF or WebP. */
export function sniffRaster(head: Uint8Array): RasterType | null {
  for (const [type, magic] of MAGIC) {
    if (
      head.length >= magic.length &&
      magic.every((byte, i) => byte === null || head[i] === byte)
    ) {
      return type;
    }
  }
  return null;
}

/**
 * Object URLs of checked raster previews, one per digest, all revoked by `clear`
 * (including those still being fetched, which are revoked as soon as they exist).
 */
export class RasterPreviews {
  private readonly urls = new Map<string, Promise<string | null>>();

  /** The preview URL of an artifact, or null when its bytes are not a raster image. */
  url(sha256: string, load: () => Promise<Blob>): Promise<string | null> {
    let url = this.urls.get(sha256);
    if (!url) {
      const made = load().then(rasterURL);
      // A failed load is tried again next time.
      made.catch(() => this.urls.get(sha256) === made && this.urls.delete(sha256));
      this.urls.set(sha256, made);
      url = made;
    }
    return url;
  }

  clear(): void {
    for (const url of this.urls.values()) {
      void url.then(made => made && URL.revokeObjectURL(made)).catch(() => undefined);
    }
    this.urls.clear();
  }
}

async function rasterURL(blob: Blob): Promise<string | null> {
  const head = new Uint8Array(await blob.slice(0, HEAD_BYTES).arrayBuffer());
  const checked = sniffRaster(head);
  if (checked === null) {
    return null;
  }
  return URL.createObjectURL(new Blob([blob], { type: checked }));
}
