// The languages the page offers, and their names in the reader's own language.

export const LANGUAGES = ["en", "de", "es", "fr", "it", "pt", "nl", "pl", "ru", "uk", "tr", "ar",
  "zh", "ja", "ko", "hi", "vi", "sv"];
export const TARGETS = ["es", "en", "de", "fr", "it", "pt", "nl", "ja", "zh", "ru"];

const displayNames = (() => {
  try {
    return new Intl.DisplayNames([navigator.language || "en"], { type: "language" });
  } catch {
    return null;
  }
})();
export const languageName = (code) => {
  try {
    return (displayNames && displayNames.of(code)) || code;
  } catch {
    return code;
  }
};
