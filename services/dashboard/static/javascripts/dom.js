// Building the pages' nodes from data (dashboard.js, live.js): text goes in through
// textContent and attributes through setAttribute, never as HTML, so whatever a
// participant wrote stays text.
window.workshopDom = (function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  return { el: el };
})();
