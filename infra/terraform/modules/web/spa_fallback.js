// CloudFront Function (cloudfront-js-2.0), viewer request of the web app's default behaviour: the SPA
// fallback, as the local gateway does it (libs/shared/spendsense_shared/gateway/web.py). A path whose last
// segment has no dot is a route of the app (/, /me/persona, /operator/review): CloudFront fetches
// /index.html and the app's router takes it from there. A path with a dot names a file and is fetched as
// it is: 404 when it is missing, never the app's HTML. /assets/* and /api/* have behaviours of their own
// and never get here; a bare /api is left alone too (404), as the gateway does.
function handler(event) {
    var request = event.request;
    var uri = request.uri;
    var last = uri.substring(uri.lastIndexOf("/") + 1);
    if (uri !== "/api" && last.indexOf(".") === -1) {
        request.uri = "/index.html";
    }
    return request;
}
