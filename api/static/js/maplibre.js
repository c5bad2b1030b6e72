// MapLibre GL JS, vendored under /static/vendor/maplibre-gl/ and loaded by index.html as a
// classic script before the modules (it defines window.maplibregl).
export const maplibregl = window.maplibregl;
