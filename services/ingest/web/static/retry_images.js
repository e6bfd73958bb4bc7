// Plots are drawn just after the answer (result and error pages): the image retries until it is there.
(function () {
  "use strict";
document.querySelectorAll("img[data-retry]").forEach(function (img) {
  var tries = 0, base = img.getAttribute("src");
  var state = img.closest("figure").querySelector(".plot-state");
  img.addEventListener("error", function () {
    tries += 1;
    if (tries > 10) { if (state) { state.textContent = " — the plot is not there yet; reload the page later"; } return; }
    if (state) { state.textContent = " — the plot is being drawn…"; }
    setTimeout(function () { img.src = base + "?try=" + tries; }, Math.min(250 * Math.pow(2, tries), 5000));
  });
  img.addEventListener("load", function () { if (state) { state.textContent = ""; } });
  if (img.complete && img.naturalWidth === 0 && img.src) { img.dispatchEvent(new Event("error")); }
});
})();
