// The admin page: a new hashtag is selected when its field gets the focus, ready to copy.
(function () {
  "use strict";
  document.querySelectorAll("input[data-select-on-focus]").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });
})();
