// How values read on the pages: sizes, times, metrics, ids.

/** Bytes as B, KiB, MiB, GiB, TiB. */
export function bytes(n) {
  if (n == null) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** An RFC 3339 time (or Unix ms) as local `YYYY-MM-DD HH:MM:SS`; "—" when unset. */
export function time(value) {
  if (value == null || value === "" || value === 0) return "—";
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) return String(value);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ` +
    `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`
  );
}

/** A duration in ms as "850 ms", "42 s", "3 min 5 s", "2 h 4 min", "3 d 2 h". */
export function duration(ms) {
  if (ms == null || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${m % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** A metric value with 5 significant digits (exponent form when tiny or huge). */
export function metric(value) {
  if (value == null || value === "") return "—";
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  if (n === 0) return "0";
  const magnitude = Math.abs(n);
  if (magnitude >= 1e6 || magnitude < 1e-4) return n.toExponential(3);
  return String(Number(n.toPrecision(5)));
}

/** The first 8 characters of a uuid. */
export function shortUuid(uuid) {
  return uuid ? String(uuid).slice(0, 8) : "—";
}

/** A hyperparameter value: integers and strings as they are, other numbers to 5 digits. */
function hparamValue(value) {
  if (Array.isArray(value)) return JSON.stringify(value);
  if (typeof value === "number" && !Number.isInteger(value)) return String(Number(value.toPrecision(5)));
  return String(value);
}

/** Hyperparameters as `name=value` pairs, nested objects flattened with dots. */
export function hparams(object, prefix = "") {
  if (object == null || typeof object !== "object") return object == null ? "" : String(object);
  return Object.entries(object)
    .map(([key, value]) =>
      value != null && typeof value === "object" && !Array.isArray(value)
        ? hparams(value, `${prefix}${key}.`)
        : `${prefix}${key}=${hparamValue(value)}`,
    )
    .join(" ");
}

/** "yes" / "no" / "—". */
export function yesNo(value) {
  return value == null ? "—" : value ? "yes" : "no";
}

/** A stable, well-spread colour for a series key (a trial id, a name). */
export function color(key) {
  let n = Number(key);
  if (!Number.isFinite(n)) {
    n = 0;
    for (const ch of String(key)) n = (n * 31 + ch.charCodeAt(0)) >>> 0;
  }
  const hue = Math.round((n * 137.508) % 360);
  const lightness = 38 + (n % 3) * 8;
  return `hsl(${hue} 70% ${lightness}%)`;
}
